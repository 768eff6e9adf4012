"""Turning registry changes into events and writing them to the outbox.

Called on the request path right after the change is in storage (the observer protocol, the
removal and refusal listeners), so the outbox row is written before the client gets its
answer. Each event gets its id (a UUID) here, once: a retry sends the same id, so a receiver
drops duplicates by it.

The data is zot's (``name``, ``reference``, ``digest``, ``mediaType``, ``manifest``), with
two objects zot's clients may read and others ignore: ``actor`` (``name``: the user, empty
when anonymous) and ``request`` (``addr``, ``method``, ``useragent``), taken from the request
that made the change.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from ocireg.auth.identity import identity_of
from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.registry import layout
from ocireg.registry.manifests import Manifest
from ocireg.registry.routes import Registries
from ocireg.registry.store import StoredManifest
from ocireg.storage.driver import PathNotFoundError

from .sinkset import Target, wanting
from .store import Outbox, Stored

log = logging.getLogger("ocireg.events")


def _request_facts() -> tuple[dict[str, str], dict[str, str]]:
    """(actor, request) of the request being handled; empty outside one."""
    from ocireg.operations import current_request  # late: the server stack

    try:
        request = current_request()
    except LookupError:
        return {"name": ""}, {}
    user = identity_of(request.scope).user or ""
    client = request.client
    return {"name": user}, {
        "addr": f"{client.host}:{client.port}" if client else "",
        "method": request.method,
        "useragent": request.headers.get("user-agent", ""),
    }


class Producer:
    """Writes one event per change to the outbox, for the sinks whose filters want it."""

    def __init__(
        self, outbox: Outbox, targets: list[Target], prefix: str, registries: Registries
    ) -> None:
        self.outbox = outbox
        self.targets = targets
        self.prefix = prefix
        self.registries = registries

    def emit(self, kind: str, repo: str, data: dict[str, Any]) -> None:
        type = f"{self.prefix}.{kind}"
        sinks = wanting(self.targets, type, repo)
        if not sinks:
            return
        actor, request = _request_facts()
        document = {**data, "actor": actor, "request": request}
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event = Stored(str(uuid.uuid4()), repo, type, stamp, json.dumps(document))
        try:
            self.outbox.record(event, sinks)
        except Exception:  # the change stands; say loudly that its event is lost
            log.exception("events: could not queue %s for %s", type, repo)

    # -- the Observer protocol ------------------------------------------------------------
    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        media_type = manifest.media_type if manifest is not None else ""
        text = self._manifest_text(repo, digest)
        for reference in tags or [digest]:
            self.emit(
                "image.updated",
                repo,
                {
                    "name": repo,
                    "reference": reference,
                    "digest": digest,
                    "mediaType": media_type,
                    "manifest": text,
                },
            )

    def untagged(self, repo: str, tag: str) -> None:
        """Told by ``removed`` instead, which knows the digest."""

    def deleted(self, repo: str, digest: str) -> None:
        """Told by ``removed`` instead, which knows the media type."""

    def pulled(self, repo: str, digest: str) -> None:
        """Pulls make no event."""

    def created(self, repo: str) -> None:
        self.emit("repository.created", repo, {"name": repo})

    def removed(self, repo: str) -> None:
        """A repository GC emptied away: zot has no event for it."""

    # -- the listeners --------------------------------------------------------------------
    def manifest_removed(self, repo: str, reference: str, stored: StoredManifest) -> None:
        self.emit(
            "image.deleted",
            repo,
            {
                "name": repo,
                "reference": reference,
                "digest": stored.digest,
                "mediaType": stored.media_type,
            },
        )

    def manifest_refused(
        self,
        repo: str,
        reference: str,
        digest: str,
        manifest: Manifest,
        data: bytes,
        refusal: RegistryError,
    ) -> None:
        from ocireg.ext.lint.check import LintRefusal

        if not isinstance(refusal, LintRefusal):
            return
        self.emit(
            "image.lint_failed",
            repo,
            {
                "name": repo,
                "reference": reference,
                "digest": digest,
                "mediaType": manifest.media_type,
                "manifest": data.decode("utf-8", "replace"),
            },
        )

    def scanned(self, repo: str, digest: str, media_type: str, summary: dict[str, Any]) -> None:
        """A CVE scan of an image finished (in the scanner's thread, outside any request)."""
        self.emit(
            "image.scanned",
            repo,
            {
                "name": repo,
                "reference": digest,
                "digest": digest,
                "mediaType": media_type,
                "vulnerabilities": summary,
            },
        )

    def _manifest_text(self, repo: str, digest: str) -> str:
        """The pushed manifest as stored (it was just written: one small read)."""
        driver = self.registries.of(repo).driver
        try:
            return driver.get_content(layout.blob_file(repo, parse_digest(digest))).decode(
                "utf-8", "replace"
            )
        except (PathNotFoundError, RegistryError):
            return ""
