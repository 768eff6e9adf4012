"""Build zot's ``StrippedConfig`` once at start-up and answer it."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ocireg import __version__, extensions
from ocireg.config import Config
from ocireg.extensions.loading import available, installed
from ocireg.extensions.runtime import SetupContext


def _lower_keys(section: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in section.items()} if isinstance(section, dict) else {}


def stripped_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """Which authentication methods are on, and only what a client needs to use them."""
    given = _lower_keys(auth)
    result: dict[str, Any] = {}
    if given.get("htpasswd") or given.get("ldap"):
        result["htpasswd"] = {}  # zot shows LDAP as htpasswd too: both mean Basic credentials
    bearer = _lower_keys(given.get("bearer"))
    if bearer:
        result["bearer"] = {"realm": bearer.get("realm", ""), "service": bearer.get("service", "")}
    providers = _lower_keys(_lower_keys(given.get("openid")).get("providers"))
    if providers:  # zot's UI draws a button per provider, labelled with its name
        result["openid"] = {
            "providers": {
                str(p): {"name": str(c["name"])} if c.get("name") else {}
                for p, c in ((p, _lower_keys(c)) for p, c in providers.items())
            }
        }
    if given.get("apikey") is True:
        result["apikey"] = True
    return result


def binary_type(names: list[str]) -> str:
    """zot's spelling: each installed extension prefixed by a dash; empty when there is none."""
    return "".join(f"-{name}" for name in sorted(names))


def stripped_config(config: Config, extensions: list[str]) -> dict[str, Any]:
    http: dict[str, Any] = {}
    given = config.http.auth
    auth = stripped_auth(given.model_dump(exclude_none=True) if given else None)
    if auth:
        http["auth"] = auth
    return {
        "distSpecVersion": config.distSpecVersion,
        "commit": "",
        "releaseTag": f"v{__version__}",
        "binaryType": binary_type(extensions),
        "http": http,
    }


def installed_names(context: SetupContext) -> list[str]:
    """zot's binaryType lists what the build contains: here, what is installed."""
    names = installed(available())
    return names + [each.name for each in context.everything if each.name not in names]


def setup(context: SetupContext) -> bytes:
    body = stripped_config(context.config, installed_names(context))
    return json.dumps(body, separators=(",", ":")).encode()


async def get_config() -> Response:
    return Response(extensions.state("mgmt"), media_type="application/json")
