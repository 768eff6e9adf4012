"""Extension specs: OpenAPI fragments merged into the routed API, and the documents served.

Each HTTP extension ships one or more OpenAPI 3 fragments and one definition document in the
OCI extension format. The enabled extensions' fragments are merged into the core spec before
connexion routes it, so an extension is validated and routed exactly like the core API, and a
disabled one is absent from routing altogether.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from ocireg.extensions.declaration import Extension

CORE_SPEC = "openapi.yaml"
# The shipped YAML documents of ``ocireg.spec``, parsed ahead: one line per document, its
# text's sha256, a tab, the document as JSON. Written by `python -m ocireg.extensions.specs`.
PARSED = "parsed.jsonl"
_METHODS = ("get", "head", "put", "post", "patch", "delete", "options")


class SpecError(ValueError):
    """An extension's spec files break a rule every extension must follow."""


# libyaml's parser where PyYAML was built with it: the same documents, ten times faster
# (the core spec took 0.2 s in pure Python, at every start of every worker).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)


@functools.cache
def _parsed_ahead() -> dict[str, str]:
    """Each shipped document's JSON by the sha256 of its YAML text."""
    try:
        lines = resources.files("ocireg.spec").joinpath(PARSED).read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("\t", 1) for line in lines if line)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_yaml(text: str) -> Any:
    """A YAML document. Start-up reads the same specs several times (the CLI's checks, the
    server, each app), and callers may change what they get, so each gets its own copy.
    A shipped spec's text is found already parsed (by its digest, so an edited spec is
    parsed again, never answered stale): YAML took 50 ms for the shipped specs even with
    libyaml, a JSON copy 1 ms; any other text is parsed once per process."""
    ahead = _parsed_ahead().get(_digest(text))
    if ahead is not None:
        return json.loads(ahead)
    return copy.deepcopy(_parsed(text))


def shipped_documents() -> list[Traversable]:
    """The YAML documents ``ocireg.spec`` ships: the core spec and the extensions' fragments."""
    spec = resources.files("ocireg.spec")
    found = [spec.joinpath(CORE_SPEC), *spec.joinpath("ext").iterdir()]
    return sorted((each for each in found if each.name.endswith(".yaml")), key=str)


def parsed_ahead_text() -> str:
    """What :data:`PARSED` must hold for the shipped documents as they are now."""
    lines = []
    for document in shipped_documents():
        text = document.read_text()
        parsed = yaml.load(text, Loader=_LOADER)
        lines.append(f"{_digest(text)}\t{json.dumps(parsed, separators=(',', ':'))}\n")
    return "".join(lines)


def core_spec() -> dict[str, Any]:
    """The core API, ``spec/openapi.yaml``."""
    spec: dict[str, Any] = parse_yaml(
        resources.files("ocireg.spec").joinpath(CORE_SPEC).read_text()
    )
    return spec


def spec_file(extension: Extension, filename: str) -> Traversable:
    return resources.files(extension.spec_package).joinpath(filename)


def documents(extension: Extension) -> list[str]:
    """The file names a client may fetch: the definition document, then the fragments."""
    names = [extension.definition] if extension.definition else []
    return names + list(extension.specs)


def load_fragment(extension: Extension, filename: str) -> dict[str, Any]:
    try:
        document = parse_yaml(spec_file(extension, filename).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"extension {extension.name}: cannot load {filename}: {exc}") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise SpecError(f"extension {extension.name}: {filename} is not an OpenAPI 3 document")
    for path, item in (document.get("paths") or {}).items():
        _check_path(extension, filename, path, item)
    return document


def _check_path(extension: Extension, filename: str, path: str, item: dict[str, Any]) -> None:
    namespace = extension.namespace
    if not (path.startswith(f"/v2/{namespace}/") or path.startswith(f"/v2/{{name}}/{namespace}/")):
        raise SpecError(
            f"extension {extension.name}: {filename}: path {path} is not under "
            f"/v2/{namespace}/ or /v2/{{name}}/{namespace}/"
        )
    for method in _METHODS:
        operation = item.get(method)
        if operation is not None and not operation.get("operationId"):
            raise SpecError(
                f"extension {extension.name}: {filename}: {method} {path} has no operationId"
            )


def endpoints(extension: Extension) -> list[str]:
    """The paths an extension serves, as its fragments declare them."""
    found: list[str] = []
    for filename in extension.specs:
        found += list(load_fragment(extension, filename).get("paths") or {})
    return found


def merge(core: dict[str, Any], extensions: list[Extension]) -> dict[str, Any]:
    """The core spec with every fragment's paths and components added (a new dict).

    A fragment may not redefine a path, and may reuse a component name only with identical
    content, so one extension can never change what another one (or the core) means.
    """
    merged = {**core, "paths": dict(core.get("paths") or {})}
    components = {key: dict(value) for key, value in (core.get("components") or {}).items()}
    for extension in extensions:
        for filename in extension.specs:
            fragment = load_fragment(extension, filename)
            where = f"extension {extension.name}: {filename}"
            for path, item in (fragment.get("paths") or {}).items():
                if path in merged["paths"]:
                    raise SpecError(f"{where}: path {path} is already declared")
                merged["paths"][path] = item
            for section, entries in (fragment.get("components") or {}).items():
                target = components.setdefault(section, {})
                for key, value in entries.items():
                    if key in target and target[key] != value:
                        raise SpecError(
                            f"{where}: components.{section}.{key} differs from the "
                            "one already declared"
                        )
                    target[key] = value
    merged["components"] = components
    return merged


def concrete_path(template: str, repository: str | None) -> str:
    """An endpoint with its repository filled in (repository-level discovery)."""
    return template.replace("{name}", repository) if repository else template


def is_repository_level(template: str) -> bool:
    return template.startswith("/v2/{name}/")


if __name__ == "__main__":  # python -m ocireg.extensions.specs: rewrite spec/parsed.jsonl
    target = resources.files("ocireg.spec").joinpath(PARSED)
    with resources.as_file(target) as path:
        path.write_text(parsed_ahead_text())
        print(f"wrote {path}")
