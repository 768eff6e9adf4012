"""What a workflow pushed, noted from the registry's answers, and taking it away afterwards.

The fuzz workflow writes whatever the generated requests manage to write: manifests under
tags or digests, blobs (monolithic, chunked, mounted), upload sessions left open, API keys.
Each write the registry accepted is noted here; at the end the manifests are deleted by
digest (their tags go with them), then the blobs, the open sessions are cancelled and the API
keys revoked. Best effort: a registry that refuses deletion keeps them, and a repository
itself cannot be deleted through the API, so what stays is inside the run's namespace.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from ocireg.conformance.ops import session_path

DIGEST_HEADER = "docker-content-digest"


def _is_digest(reference: str) -> bool:
    return ":" in reference


@dataclass
class Pushed:
    """Everything the registry accepted, in the order it was written."""

    manifests: dict[tuple[str, str], None] = field(default_factory=dict)  # (repo, reference)
    blobs: dict[tuple[str, str], None] = field(default_factory=dict)  # (repo, digest)
    uploads: dict[str, None] = field(default_factory=dict)  # session locations
    api_keys: dict[str, None] = field(default_factory=dict)  # key ids

    def note(
        self,
        method: str,
        template: str,
        status: int,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        body: bytes,
    ) -> None:
        """Note what an answer says was written. ``template`` is the spec's path (with
        ``{name}``), ``headers`` have lower-case names, ``params`` are the request's path and
        query parameters, decoded."""
        if status != 201 and not (status == 202 and "/blobs/uploads/" in template):
            return
        name, digest = params.get("name"), headers.get(DIGEST_HEADER)
        if template == "/zot/auth/apikey" and method == "POST":
            self._note_api_key(body)
        elif name is None:
            return
        elif template.endswith("/manifests/{reference}") and method == "PUT":
            reference = digest or params.get("reference")
            if reference:
                self.manifests[(name, reference)] = None
        elif "/blobs/uploads/" in template and status == 201:
            digest = digest or params.get("digest") or params.get("mount")
            if digest:
                self.blobs[(name, digest)] = None
        elif "/blobs/uploads/" in template and "location" in headers:
            self.uploads[session_path(headers["location"])] = None

    def note_manifest(self, repo: str, digest: str) -> None:
        self.manifests[(repo, digest)] = None

    def note_blob(self, repo: str, digest: str) -> None:
        self.blobs[(repo, digest)] = None

    def _note_api_key(self, body: bytes) -> None:
        try:
            document = json.loads(body)
        except ValueError:
            return
        if isinstance(document, dict) and isinstance(document.get("uuid"), str):
            self.api_keys[document["uuid"]] = None

    def take_away(self, client: httpx.Client) -> None:
        """Delete what was noted, newest first (referrers before their subjects)."""
        for repo, reference in reversed(list(self.manifests)):
            digest = reference if _is_digest(reference) else self._resolve(client, repo, reference)
            if digest:
                self._delete(client, f"/v2/{repo}/manifests/{digest}")
        for repo, digest in reversed(list(self.blobs)):
            self._delete(client, f"/v2/{repo}/blobs/{digest}")
        for location in self.uploads:
            self._delete(client, location)
        for key in self.api_keys:
            self._delete(client, "/zot/auth/apikey", params={"id": key})

    @staticmethod
    def _resolve(client: httpx.Client, repo: str, tag: str) -> str | None:
        try:
            response = client.head(f"/v2/{repo}/manifests/{tag}")
        except httpx.HTTPError:
            return None
        digest: str | None = response.headers.get(DIGEST_HEADER)
        return digest

    @staticmethod
    def _delete(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> None:
        # Best effort: when the registry refuses or went away, the rest still goes.
        with contextlib.suppress(httpx.HTTPError):
            client.delete(path, params=params)
