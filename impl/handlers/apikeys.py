"""``/zot/auth/apikey``: a user's API keys, as zot serves them (``http.auth.apikey``)."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.responses import Response

from ocireg import jsonparse
from ocireg.auth.apikeys import KEY_MAKERS, ApiKeys, parse_expiration, zot_details
from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import app_state, identity, query
from ocireg.operations import current_request


def _keys() -> ApiKeys:
    guard = app_state().guard
    if guard is None or guard.api_keys is None:
        raise RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": "API keys are off (http.auth.apikey)"}, status=404
        )
    return guard.api_keys


def _user() -> str:
    user = identity().user
    assert user is not None  # the operation's rule lets only authenticated callers in
    return user


def _json(document: object, status: int = 200) -> Response:
    return Response(json.dumps(document), status, media_type="application/json")


def _json_object(body: bytes) -> dict[str, Any]:
    """The request's JSON object; 400 for anything else (an empty body skips the schema's
    check: it has no media type to validate)."""
    try:
        payload = jsonparse.loads(body)
    except jsonparse.JSONError as exc:
        raise RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": f"the body must be a JSON object: {exc}"}, status=400
        ) from None
    if not isinstance(payload, dict):
        raise RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": "the body must be a JSON object"}, status=400
        )
    return payload


async def create_key() -> Response:
    keys, who = _keys(), identity()
    if who.method not in KEY_MAKERS:  # a leaked key must not be able to mint more
        guard = app_state().guard
        assert guard is not None  # _keys() found it
        raise await guard.deny({"reason": "log in with a password or OpenID to make keys"})
    # its size, nesting and shape were checked by request validation (ocireg.validation)
    payload = _json_object(await current_request().body())
    now = time.time()
    try:
        expires = parse_expiration(payload.get("expirationDate") or "", now)
    except ValueError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"reason": str(exc)}, status=400) from None
    key, details = await keys.db.asked(
        keys.create,
        _user(),
        tuple(sorted(who.groups)),
        payload.get("label") or "",
        tuple(payload.get("scopes") or ()),
        expires,
        current_request().headers.get("user-agent", ""),
    )
    return _json({**zot_details(details, now), "apiKey": key}, 201)


async def list_keys() -> Response:
    keys, now = _keys(), time.time()
    listed = await keys.db.asked(keys.db.api_keys, _user())
    return _json({"apiKeys": [zot_details(k, now) for k in listed]})


async def revoke_key() -> Response:
    keys = _keys()
    # as in zot: revoking twice is fine
    await keys.db.asked(keys.db.revoke_api_key, _user(), query("id") or "")
    return Response(status_code=200)
