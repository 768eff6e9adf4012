"""Test data and the few OCI distribution calls the scenarios are made of."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
ARTIFACT_TYPE = "application/vnd.ocireg.bench.signature"
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PatternBlob:
    """A large blob made of one random 1 MiB block repeated: streamed, never held in memory."""

    size: int
    block: bytes

    @classmethod
    def make(cls, size: int) -> PatternBlob:
        assert size % MiB == 0
        return cls(size, os.urandom(MiB))

    @property
    def digest(self) -> str:
        return _pattern_digest(self.size, self.block)

    async def stream(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive), both multiples of 1 MiB."""
        for _ in range(start, self.size if end is None else end, MiB):
            yield self.block


_DIGESTS: dict[tuple[int, bytes], str] = {}


def _pattern_digest(size: int, block: bytes) -> str:
    key = (size, block)
    if key not in _DIGESTS:
        hasher = hashlib.sha256()
        for _ in range(size // MiB):
            hasher.update(block)
        _DIGESTS[key] = "sha256:" + hasher.hexdigest()
    return _DIGESTS[key]


def expect(response: httpx.Response, *status: int) -> httpx.Response:
    if response.status_code not in status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} -> {response.status_code}, "
            f"wanted {status}: {response.text[:300]}"
        )
    return response


def location(response: httpx.Response) -> httpx.URL:
    return response.url.join(response.headers["location"])


def next_url(response: httpx.Response) -> httpx.URL | None:
    match = _NEXT.search(response.headers.get("link", ""))
    return response.url.join(match.group(1)) if match else None


async def start_upload(client: httpx.AsyncClient, repo: str) -> httpx.URL:
    return location(expect(await client.post(f"/v2/{repo}/blobs/uploads/"), 202))


async def push_blob(
    client: httpx.AsyncClient, repo: str, digest: str, body: bytes | AsyncIterator[bytes], size: int
) -> None:
    """Monolithic POST then PUT ?digest= with the whole body (a stream keeps Content-Length)."""
    url = (await start_upload(client, repo)).copy_merge_params({"digest": digest})
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    expect(await client.put(url, content=body, headers=headers), 201)


async def push_blob_chunked(
    client: httpx.AsyncClient, repo: str, blob: PatternBlob, chunk: int
) -> None:
    url = await start_upload(client, repo)
    for start in range(0, blob.size, chunk):
        end = min(start + chunk, blob.size)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{end - 1}",
            "Content-Length": str(end - start),
        }
        response = await client.patch(url, content=blob.stream(start, end), headers=headers)
        url = location(expect(response, 202))
    done = await client.put(url.copy_merge_params({"digest": blob.digest}))
    expect(done, 201)


async def pull_blob(client: httpx.AsyncClient, repo: str, digest: str) -> int:
    received = 0
    async with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        expect(response, 200)
        async for piece in response.aiter_raw():
            received += len(piece)
    return received


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def image_manifest(
    config: dict[str, Any], layers: list[dict[str, Any]], annotations: dict[str, str] | None = None
) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, separators=(",", ":")).encode()


def referrer_manifest(subject: bytes, index: int) -> bytes:
    empty = descriptor(OCI_EMPTY, b"{}")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": empty,
        "layers": [empty],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"bench.index": str(index)},
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ImageBase:
    """A config blob and one layer pushed to a repository; manifests reference both."""

    config: dict[str, Any]
    layer: dict[str, Any]

    def manifest(self, index: int | None = None) -> bytes:
        notes = None if index is None else {"bench.index": str(index)}
        return image_manifest(self.config, [self.layer], notes)


CONFIG_BLOB = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER_BLOB = os.urandom(1024)


async def push_image_base(client: httpx.AsyncClient, repo: str) -> ImageBase:
    for data in (CONFIG_BLOB, LAYER_BLOB, b"{}"):
        await push_blob(client, repo, sha256(data), data, len(data))
    return ImageBase(descriptor(OCI_CONFIG, CONFIG_BLOB), descriptor(OCI_LAYER, LAYER_BLOB))


async def mount_blob(client: httpx.AsyncClient, repo: str, digest: str, source: str) -> None:
    params = {"mount": digest, "from": source}
    expect(await client.post(f"/v2/{repo}/blobs/uploads/", params=params), 201)


async def put_manifest(client: httpx.AsyncClient, repo: str, ref: str, body: bytes) -> None:
    headers = {"Content-Type": OCI_MANIFEST}
    expect(await client.put(f"/v2/{repo}/manifests/{ref}", content=body, headers=headers), 201)


async def pool(workers: int, items: Iterable[Any], work: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``work`` over ``items`` with ``workers`` coroutines sharing one iterator."""
    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def walk_pages(client: httpx.AsyncClient, url: str, key: str) -> tuple[int, int]:
    """GET ``url`` and follow rel="next" links; return (entries seen, requests made)."""
    entries, requests, current = 0, 0, httpx.URL(url)
    next_page: httpx.URL | None = current
    while next_page is not None:
        response = expect(await client.get(next_page), 200)
        requests += 1
        entries += len(response.json().get(key) or [])
        next_page = next_url(response)
    return entries, requests
