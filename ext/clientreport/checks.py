"""The rules, checked on each exchange against what the client's memory holds; each check
returns whether the exchange breaks its rule, and remembers what later checks need."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from .exchange import Exchange
from .memory import Memory

MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
ALGORITHMS = frozenset({"sha256", "sha512"})
WAITING_STATUSES = (429, 503)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# A Location elsewhere (a presigned storage URL) is fetched where the report cannot see: the
# redirected URL asked again this soon is taken for a client that did not follow.
FOLLOW_SECONDS = 10.0


def _ok(status: int) -> bool:
    return 200 <= status < 300


def manifest_put_content_type(ex: Exchange, _memory: Memory) -> bool:
    if ex.method != "PUT" or ex.manifest() is None:
        return False
    given = ex.headers.get("content-type", "")
    return ";" in given or given.strip().lower() not in MANIFEST_TYPES


def blob_patch_content_type(ex: Exchange, _memory: Memory) -> bool:
    if ex.method != "PATCH" or ex.upload() is None:
        return False
    given = ex.headers.get("content-type", "").split(";")[0].strip().lower()
    return given != "application/octet-stream"


def content_range_length_mismatch(ex: Exchange, _memory: Memory) -> bool:
    if ex.method != "PATCH" or ex.upload() is None:
        return False
    span, length = ex.headers.get("content-range"), ex.headers.get("content-length")
    if span is None or length is None:
        return False
    first, dash, last = span.strip().removeprefix("bytes=").partition("-")
    try:
        return not dash or int(last) - int(first) + 1 != int(length)
    except ValueError:
        return True  # a range that is not <first>-<last> agrees with no length


def _location_path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def upload_location_ignored(ex: Exchange, memory: Memory) -> bool:
    upload = ex.upload()
    if upload is None:
        return False
    departed = False
    if ex.method in ("PATCH", "PUT") and upload[1]:
        expected = memory.locations.get(upload[1])
        departed = expected is not None and not _follows(ex, expected)
    location = ex.answer.get("location")
    if ex.status == 202 and location:
        memory.locations.set(urlsplit(location).path.rsplit("/", 1)[-1], _location_path(location))
    return departed


def _follows(ex: Exchange, location: str) -> bool:
    """The request goes to ``location``: its path, and every query parameter it carries (a
    PUT adds ``digest``)."""
    parts = urlsplit(location)
    ours = set(parse_qsl(ex.query, keep_blank_values=True))
    return ex.path == parts.path and set(parse_qsl(parts.query, keep_blank_values=True)) <= ours


def manifest_get_accept(ex: Exchange, _memory: Memory) -> bool:
    if ex.method not in ("GET", "HEAD") or ex.manifest() is None or not _ok(ex.status):
        return False
    served = ex.answer.get("content-type", "").split(";")[0].strip().lower()
    accepted = {
        kind.split(";")[0].strip().lower() for kind in ex.headers.get("accept", "").split(",")
    }
    return not accepted & {served, "*/*", "application/*"}


def head_after_push(ex: Exchange, memory: Memory) -> bool:
    """A HEAD of a blob the client pushed to the repository since its last manifest PUT
    there: within one push, the upload's 201 already said the blob is there."""
    manifest = ex.manifest()
    if manifest is not None and ex.method == "PUT" and _ok(ex.status):
        memory.manifests.set(manifest[0], (memory.manifests.get(manifest[0]) or 0) + 1)
    blob = ex.blob()
    if ex.method != "HEAD" or blob is None:
        return False
    pushed_at = memory.pushed.get(blob)
    return pushed_at is not None and pushed_at == (memory.manifests.get(blob[0]) or 0)


def blob_repush(ex: Exchange, memory: Memory) -> bool:
    """An upload that completes (PUT, or a single POST, with ``digest``) of a blob the client
    was told the registry holds; then remember what this exchange tells the client."""
    upload = ex.upload()
    digest = ex.parameter("digest") if upload is not None else None
    completes = ex.method in ("PUT", "POST") and digest is not None
    departed = completes and memory.known.get(digest or "") is not None
    if upload is not None and ex.status == 201:
        mounted = ex.parameter("mount")
        for each in filter(None, (digest, mounted)):
            memory.known.set(each, upload[0])
        if digest:
            memory.pushed.set((upload[0], digest), memory.manifests.get(upload[0]) or 0)
    blob = ex.blob()
    if blob is not None and ex.method in ("GET", "HEAD") and _ok(ex.status):
        memory.known.set(blob[1], blob[0])
    return departed


def _digests(ex: Exchange) -> list[str]:
    found = [ex.parameter("digest"), ex.parameter("mount")]
    blob, manifest = ex.blob(), ex.manifest()
    found += [blob[1] if blob else None, manifest[1] if manifest else None]
    return [digest for digest in found if digest and ":" in digest]


def digest_algorithm(ex: Exchange, _memory: Memory) -> bool:
    return any(d.split(":", 1)[0].lower() not in ALGORITHMS for d in _digests(ex))


def authorization_before_challenge(ex: Exchange, memory: Memory) -> bool:
    departed = "authorization" in ex.headers and not memory.challenged
    if ex.status == 401 and "www-authenticate" in ex.answer:
        memory.challenged = True
    return departed


def retry_after_ignored(ex: Exchange, memory: Memory) -> bool:
    key = (ex.method, ex.path)
    not_before = memory.waits.pop(key)
    departed = not_before is not None and ex.started < not_before
    if ex.status in WAITING_STATUSES:
        wait = _seconds(ex.answer.get("retry-after"))
        if wait is not None:
            memory.waits.set(key, ex.started + wait)
    return departed


def redirect_not_followed(ex: Exchange, memory: Memory) -> bool:
    """The URL of an earlier redirect asked again: before its Location (on this registry) was
    fetched, or within FOLLOW_SECONDS (a Location elsewhere); then remember this redirect."""
    target = ex.path + (f"?{ex.query}" if ex.query else "")
    followed = memory.redirect_targets.pop(target)
    if followed is not None:
        memory.redirects.pop(followed)
    key = (ex.method, ex.path, ex.query)
    earlier = memory.redirects.pop(key)
    departed = earlier is not None and (earlier[1] or ex.started - earlier[0] < FOLLOW_SECONDS)
    location = ex.answer.get("location")
    if ex.status in REDIRECT_STATUSES and location:
        here = _on_this_registry(location, ex.headers.get("host", ""))
        memory.redirects.set(key, (ex.started, here))
        if here:
            memory.redirect_targets.set(_location_path(location), key)
    return departed


def _on_this_registry(location: str, host: str) -> bool:
    netloc = urlsplit(location).netloc
    return not netloc or netloc.lower() == host.lower()


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as delay-seconds; an HTTP date is not checked (ocireg sends seconds)."""
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return float(retry_after.strip())


Check = Callable[[Exchange, Memory], bool]
# in the order they run; each check both judges and remembers, so order matters only where
# two read the same memory: head_after_push reads `pushed` before blob_repush adds to it
CHECKS: dict[str, Check] = {
    "manifest-put-content-type": manifest_put_content_type,
    "blob-patch-content-type": blob_patch_content_type,
    "content-range-length-mismatch": content_range_length_mismatch,
    "upload-location-ignored": upload_location_ignored,
    "manifest-get-accept": manifest_get_accept,
    "head-after-push": head_after_push,
    "blob-repush": blob_repush,
    "digest-algorithm": digest_algorithm,
    "authorization-before-challenge": authorization_before_challenge,
    "retry-after-ignored": retry_after_ignored,
    "redirect-not-followed": redirect_not_followed,
}
