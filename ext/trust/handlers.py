"""Uploading, listing and deleting trust material (``/v2/_zot/ext/cosign`` and
``/v2/_zot/ext/notation``), admin only, and the extension's setup.

Uploads answer as zot's: 200, 400 with a reason for a bad key, certificate or truststore type,
413 above 8 MiB. Listing and deleting are ocireg's (zot cannot delete): GET lists, DELETE
``?digest=`` removes one. A change re-evaluates the signatures of that tool, in the background.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from ocireg import extensions
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import body_stream, header_int, query

from . import TrustSettings
from .material import (
    TRUSTSTORE_TYPES,
    MaterialError,
    certificate_digest,
    certificate_pem,
    certificates,
    cosign_key,
    load_certificate,
)
from .running import SignatureObserver, Trust
from .store import Material

MAX_BODY = 8 * 1024 * 1024  # zot's MaxImageTrustBodySize


def setup(context: SetupContext) -> Trust:
    settings: TrustSettings = context.settings
    trust = Trust.build(settings, context.registries, context.app.meta, context.scheduler)
    context.observe(SignatureObserver(trust))
    trust.schedule()
    if settings.requireSignature:
        context.check_pulls(trust.check_pull)
    return trust


def _trust() -> Trust:
    running: Trust = extensions.state("trust")
    return running


def _bad(reason: str, status: int = 400) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"reason": reason}, status=status, message=reason)


def _tool_on(trust: Trust, tool: str) -> None:
    if not getattr(trust.settings, tool):
        reason = f"{tool} verification is off (extensions.trust.{tool})"
        raise RegistryError(ErrorCode.EXTENSION_UNKNOWN, {"reason": reason}, message=reason)


async def _body() -> bytes:
    too_large = _bad(f"the body is larger than {MAX_BODY} bytes", 413)
    declared = header_int("content-length")
    if declared is not None and declared > MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in body_stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    if not body.strip():
        raise _bad("the body is empty")
    return bytes(body)


def _digest() -> str:
    digest = query("digest") or ""
    if not digest:
        raise _bad("digest is required")
    return digest


def _changed(trust: Trust, tool: str, *, added: bool) -> None:
    trust.reevaluate(tool, added=added)


# -- cosign -------------------------------------------------------------------------------------
async def upload_cosign_key() -> Response:
    trust = _trust()
    _tool_on(trust, "cosign")
    try:
        key = cosign_key(await _body())
    except MaterialError as exc:
        raise _bad(f"invalid public key: {exc}") from None
    material = Material("cosign", "", key.digest, key.pem, key.kind, time.time())
    tables = trust.evaluator.tables
    if await tables.db.asked(tables.add_material, material):
        _changed(trust, "cosign", added=True)
    return JSONResponse({"digest": key.digest})


async def list_cosign_keys() -> Response:
    trust = _trust()
    _tool_on(trust, "cosign")
    tables = trust.evaluator.tables
    keys = [
        {"digest": m.digest, "type": m.label, "publicKey": m.pem, "uploaded": _when(m.uploaded_at)}
        for m in await tables.db.asked(tables.material, "cosign")
    ]
    return JSONResponse({"keys": keys})


async def delete_cosign_key() -> Response:
    trust = _trust()
    _tool_on(trust, "cosign")
    digest = _digest()
    tables = trust.evaluator.tables
    if not await tables.db.asked(tables.remove_material, "cosign", "", digest):
        raise _unknown(digest)
    _changed(trust, "cosign", added=False)
    return Response(status_code=200)


# -- notation -----------------------------------------------------------------------------------
def _truststore_type(default: str | None = "ca") -> str | None:
    kind = query("truststoreType")
    kind = default if kind is None else kind  # zot's default: ca
    if kind is not None and kind not in TRUSTSTORE_TYPES:
        raise _bad(f"invalid truststoreType {kind!r} (one of {', '.join(TRUSTSTORE_TYPES)})")
    return kind


async def upload_notation_certificate() -> Response:
    trust = _trust()
    _tool_on(trust, "notation")
    store = _truststore_type() or "ca"
    try:
        found = certificates(await _body())
    except MaterialError as exc:
        raise _bad(f"invalid certificate: {exc}") from None
    now, added, digests = time.time(), False, []
    tables = trust.evaluator.tables
    for certificate in found:
        digest = certificate_digest(certificate)
        digests.append(digest)
        subject = certificate.subject.rfc4514_string()
        material = Material("notation", store, digest, certificate_pem(certificate), subject, now)
        added = await tables.db.asked(tables.add_material, material) or added
    if added:
        _changed(trust, "notation", added=True)
    return JSONResponse({"digests": digests, "truststoreType": store})


async def list_notation_certificates() -> Response:
    trust = _trust()
    _tool_on(trust, "notation")
    wanted = _truststore_type(default=None)
    tables = trust.evaluator.tables
    found = [
        _certificate_entry(m)
        for m in await tables.db.asked(tables.material, "notation")
        if wanted is None or m.store == wanted
    ]
    return JSONResponse({"certificates": found})


async def delete_notation_certificate() -> Response:
    trust = _trust()
    _tool_on(trust, "notation")
    store, digest = _truststore_type() or "ca", _digest()
    tables = trust.evaluator.tables
    if not await tables.db.asked(tables.remove_material, "notation", store, digest):
        raise _unknown(digest)
    _changed(trust, "notation", added=False)
    return Response(status_code=200)


def _certificate_entry(material: Material) -> dict[str, Any]:
    certificate = load_certificate(material.pem)
    return {
        "digest": material.digest,
        "truststoreType": material.store,
        "subject": material.label,
        "issuer": certificate.issuer.rfc4514_string(),
        "notAfter": certificate.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "uploaded": _when(material.uploaded_at),
    }


def _unknown(digest: str) -> RegistryError:
    reason = f"no such key or certificate: {digest}"
    return RegistryError(ErrorCode.BLOB_UNKNOWN, {"reason": reason, "digest": digest})


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
