"""Scrub: verify that every image's stored bytes still match their digests.

For each manifest a repository lists (tagged ones by tag, untagged ones by digest), the
manifest's own bytes, its config and each layer are hashed again; an index is checked through
each child it lists. Content with ``urls`` (foreign layers) is not expected to be stored. The
first blob that is missing or does not match makes the image ``affected``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ocireg.digests import Digest, new_hasher, parse_digest
from ocireg.errors import RegistryError
from ocireg.registry import layout
from ocireg.registry.index import entry_tag
from ocireg.registry.manifests import Manifest, parse_manifest
from ocireg.registry.store import Registry
from ocireg.storage.driver import PathNotFoundError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScrubResult:
    repo: str
    reference: str  # a tag, or the digest of an untagged manifest
    status: str  # "ok" or "affected"
    affected_blob: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Affected(Exception):
    def __init__(self, blob: str, error: str) -> None:
        super().__init__(error)
        self.blob, self.error = blob, error


def scrub_repository(registry: Registry, repo: str) -> Iterator[ScrubResult]:
    """Check every image of ``repo``; blocking (it reads every byte), run it in a thread."""
    index = registry.indexes.load(repo)
    if index is None:
        return
    for entry in index.entries:
        reference = entry_tag(entry) or entry["digest"]
        try:
            _check_manifest(registry, repo, entry["digest"], entry.get("mediaType"), set())
        except _Affected as affected:
            yield ScrubResult(repo, reference, "affected", affected.blob, affected.error)
        else:
            yield ScrubResult(repo, reference, "ok")


def _check_manifest(
    registry: Registry, repo: str, digest: str, media_type: str | None, seen: set[str]
) -> None:
    if digest in seen:
        return
    seen.add(digest)
    data = _verified_bytes(registry, repo, digest)
    try:
        manifest = parse_manifest(data, media_type, docker_compat=True)
    except RegistryError as exc:
        raise _Affected(digest, f"manifest does not parse: {exc.detail}") from None
    _check_contents(registry, repo, manifest, seen)


def _check_contents(registry: Registry, repo: str, manifest: Manifest, seen: set[str]) -> None:
    for child in manifest.manifests:
        _check_manifest(registry, repo, str(child.digest), child.media_type, seen)
    blobs = [manifest.config, *manifest.layers] if manifest.config else manifest.layers
    for blob in blobs:
        if not blob.external:
            _verify_blob(registry, repo, blob.digest)


def _verified_bytes(registry: Registry, repo: str, digest: str) -> bytes:
    parsed = _parse(digest)
    try:
        data = registry.driver.get_content(layout.blob_file(repo, parsed))
    except PathNotFoundError:
        raise _Affected(digest, "blob missing") from None
    if not parsed.supported:
        return data  # an algorithm we cannot compute: nothing to compare with
    hasher = new_hasher(parsed.algorithm)
    hasher.update(data)
    if hasher.hexdigest() != parsed.encoded:
        raise _Affected(digest, "content does not match its digest")
    return data


def _verify_blob(registry: Registry, repo: str, digest: Digest) -> None:
    if not digest.supported:
        return  # an algorithm we cannot compute: nothing to compare with
    hasher = new_hasher(digest.algorithm)
    try:
        with registry.driver.reader(layout.blob_file(repo, digest)) as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    except PathNotFoundError:
        raise _Affected(str(digest), "blob missing") from None
    if hasher.hexdigest() != digest.encoded:
        raise _Affected(str(digest), "content does not match its digest")


def _parse(digest: str) -> Digest:
    try:
        return parse_digest(digest)
    except RegistryError:
        raise _Affected(digest, "invalid digest in index.json") from None
