"""The S3 requests a manifest push makes, counted on the driver's client (issue 18: on S3 each
request is a round trip of 10-30 ms and several ms of CPU, and a push is paid in them).

Pushes go through the ASGI app on an s3 driver against moto's S3 server; every request the
driver's botocore client sends is recorded by operation and key."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.config import Config
from ocireg.digests import parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.registry import index as index_module
from ocireg.registry.gc import GarbageCollector
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.storage.s3 import S3Driver
from tests.oci import canonical, error_codes, image_manifest, push_blob, put_manifest
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

REPO = "team/app"


class Recorded:
    """The S3 requests a driver's client sends: (operation, key below the bucket)."""

    def __init__(self, driver: S3Driver) -> None:
        self.calls: list[tuple[str, str]] = []
        self.bucket = driver.bucket
        driver.client.meta.events.register("before-send.s3", self._sent)

    def _sent(self, request: Any, event_name: str, **_: Any) -> None:
        key = request.url.split(f"/{self.bucket}/", 1)[-1].split("?", 1)[0]
        self.calls.append((event_name.rsplit(".", 1)[-1], key))

    def during(self) -> _Window:
        return _Window(self)


class _Window:
    def __init__(self, recorded: Recorded) -> None:
        self._recorded = recorded
        self._start = 0
        self.calls: list[tuple[str, str]] = []

    def __enter__(self) -> _Window:
        self._start = len(self._recorded.calls)
        return self

    def __exit__(self, *_: object) -> None:
        self.calls = self._recorded.calls[self._start :]

    def operations(self) -> list[str]:
        return sorted(operation for operation, _ in self.calls)


def _driver(endpoint: S3Endpoint) -> S3Driver:
    return S3Driver(
        bucket=endpoint.new_bucket(),
        region=REGION,
        regionendpoint=endpoint.url,
        secure=False,
        accesskey=ACCESS_KEY,
        secretkey=SECRET_KEY,
    )


@pytest.fixture
def driver(s3_endpoint: S3Endpoint) -> S3Driver:
    return _driver(s3_endpoint)


class _AppTransport(httpx.BaseTransport):
    """The ASGI app as a synchronous transport, one event loop per request, so that the
    helpers of tests.oci (written for a live server) drive it."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            answer = await httpx.ASGITransport(app=self._app).handle_async_request(request)
            body = b"".join([chunk async for chunk in answer.stream])  # type: ignore[union-attr]
            return httpx.Response(answer.status_code, headers=answer.headers, content=body)

        return asyncio.run(call())


@pytest.fixture
def client(driver: S3Driver, tmp_path: Path) -> Iterator[httpx.Client]:
    with warnings.catch_warnings():
        # connexion's imports use deprecated jsonschema and starlette names; not ours to fix
        warnings.simplefilter("ignore")
        from ocireg.app import create_app

    config = Config.model_validate({"storage": {"rootDirectory": str(tmp_path / "root")}})
    transport = _AppTransport(create_app(config, driver))
    with httpx.Client(transport=transport, base_url="http://registry") as http:
        yield http


def _key(digest: str) -> str:
    parsed = parse_digest(digest)
    return f"{REPO}/blobs/{parsed.algorithm}/{parsed.encoded}"


INDEX = f"{REPO}/index.json"


def test_a_manifest_pushed_again_under_a_new_tag_reads_and_writes_the_index_only(
    driver: S3Driver, client: httpx.Client
) -> None:
    document = image_manifest(client, REPO)
    put_manifest(client, REPO, "v1", document)
    recorded = Recorded(driver)
    with recorded.during() as push:
        put_manifest(client, REPO, "v2", document)
    # the index lists it: it and its blobs are stored (GC and blob DELETE keep them)
    assert push.calls == [("GetObject", INDEX), ("PutObject", INDEX)]
    assert client.get(f"/v2/{REPO}/manifests/v2").content == canonical(document)


def test_a_new_manifest_checks_each_blob_once_and_writes_itself_unless_there(
    driver: S3Driver, client: httpx.Client
) -> None:
    document = image_manifest(client, REPO, layers=[b"one", b"two", b"one"])
    put_manifest(client, REPO, "v1", image_manifest(client, REPO, layers=[b"base"]))
    recorded = Recorded(driver)
    with recorded.during() as push:
        answer = put_manifest(client, REPO, "v2", document)
    digest = answer.headers["Docker-Content-Digest"]
    heads = sorted(key for operation, key in push.calls if operation == "HeadObject")
    config, one, two = (d["digest"] for d in [document["config"], *document["layers"][:2]])
    assert config == image_manifest(client, REPO)["config"]["digest"]  # v1's: found then
    assert heads == sorted(_key(d) for d in (one, two))  # once each, under the lock
    assert push.operations() == sorted(
        ["GetObject", "HeadObject", "HeadObject", "PutObject", "PutObject"]
    )
    assert ("PutObject", _key(digest)) in push.calls  # one conditional write, no HEAD first
    assert client.get(f"/v2/{REPO}/manifests/v2").content == canonical(document)


def test_a_manifest_whose_blob_is_there_keeps_its_age(
    driver: S3Driver, client: httpx.Client
) -> None:
    """Its blob uploaded as a blob first (as some clients do): the push leaves it as it is,
    so the modification time GC reads is not renewed."""
    document = image_manifest(client, REPO)
    body = canonical(document)
    digest = push_blob(client, REPO, body)
    before = driver.stat(_key(digest)).mod_time
    put_manifest(client, REPO, "v1", document)
    assert driver.stat(_key(digest)).mod_time == before
    assert client.get(f"/v2/{REPO}/manifests/v1").content == body


def test_a_missing_blob_is_refused_with_nothing_written(
    driver: S3Driver, client: httpx.Client
) -> None:
    put_manifest(client, REPO, "v1", image_manifest(client, REPO))
    index = driver.get_content(INDEX)
    document = image_manifest(client, REPO)
    document["layers"][0]["digest"] = "sha256:" + "0" * 64
    recorded = Recorded(driver)
    with recorded.during() as push:
        answer = put_manifest(client, REPO, "v2", document, expect=404)
    assert error_codes(answer) == ["MANIFEST_BLOB_UNKNOWN"]
    assert "PutObject" not in push.operations()
    assert driver.get_content(INDEX) == index
    # into a repository that does not exist: refused before it is laid out
    answer = put_manifest(client, "team/new", "v1", document, expect=404)
    assert error_codes(answer) == ["MANIFEST_BLOB_UNKNOWN"]
    assert not driver.exists("team/new/index.json")
    assert "team/new" not in client.get("/v2/_catalog").json()["repositories"]


def test_pushes_of_one_commit_batch_check_each_blob_once(driver: S3Driver) -> None:
    """Pushes that wait for the repository lock commit together: one index read and write,
    and one check of each blob they share, however many of them reference it."""
    registry = Registry(driver, KeyedLocks(None))
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer"
    descriptors = {}
    for data in (config, layer):
        driver.put_content(_key(_digest(data)), data)
        descriptors[data] = {"digest": _digest(data), "size": len(data)}
    bodies = [
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    **descriptors[config],
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", **descriptors[layer]}
                ],
                "annotations": {"n": str(n)},
            }
        )
        for n in range(5)
    ]
    recorded = Recorded(driver)

    asyncio.run(registry.ensure_repository(REPO))

    async def push_all() -> None:
        async with registry.locks.hold(REPO):  # every push queues behind this
            pushes = [
                asyncio.create_task(registry.put_manifest(REPO, f"v{n}", body, None, []))
                for n, body in enumerate(bodies)
            ]
            await asyncio.sleep(0.1)
        await asyncio.gather(*pushes)

    with recorded.during() as batch:
        asyncio.run(push_all())
    operations = batch.operations()
    assert operations.count("HeadObject") == 2  # config and layer, once for five pushes
    assert operations.count("GetObject") == 1  # the index, once
    assert [key for op, key in batch.calls if op == "PutObject"].count(INDEX) == 1
    assert sorted(registry.index(REPO).tags) == [f"v{n}" for n in range(5)]  # type: ignore[union-attr]


def _digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_new_manifest_of_blobs_found_before_makes_three_requests(
    driver: S3Driver, client: httpx.Client
) -> None:
    """Blobs an earlier push found under the lock are not asked again while the index's
    removals token is unchanged: the index read, the manifest's own write, the index write."""
    put_manifest(client, REPO, "v1", image_manifest(client, REPO, layers=[b"one"]))
    document = image_manifest(client, REPO, layers=[b"one"])
    document["annotations"] = {"n": "2"}  # a manifest not seen, of the same blobs
    recorded = Recorded(driver)
    with recorded.during() as push:
        answer = put_manifest(client, REPO, "v2", document)
    digest = answer.headers["Docker-Content-Digest"]
    assert push.calls == [("GetObject", INDEX), ("PutObject", _key(digest)), ("PutObject", INDEX)]
    assert client.get(f"/v2/{REPO}/manifests/v2").content == canonical(document)


def _two_registries(driver: S3Driver) -> tuple[Registry, Registry]:
    """Two instances on one bucket (run one after the other here: no shared lock needed)."""
    return Registry(driver, KeyedLocks(None)), Registry(driver, KeyedLocks(None))


def _image(layer: bytes, note: str) -> bytes:
    config = b'{"architecture":"amd64","os":"linux"}'
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _digest(layer),
                    "size": len(layer),
                }
            ],
            "annotations": {"note": note},
        }
    )


def _store_blobs(driver: S3Driver, *blobs: bytes) -> None:
    for data in (b'{"architecture":"amd64","os":"linux"}', *blobs):
        driver.put_content(_key(_digest(data)), data)


def test_a_blob_deleted_by_another_instance_is_asked_again(driver: S3Driver) -> None:
    """Instance A found the layer; instance B deletes the manifest and then the layer (blob
    DELETE changes the removals token before it removes the file): A's next push referencing
    the layer asks storage again and is refused, rather than referencing a missing blob."""
    first, second = _two_registries(driver)
    _store_blobs(driver, b"layer")
    pushed = asyncio.run(first.put_manifest(REPO, "v1", _image(b"layer", "1"), None, []))
    asyncio.run(second.delete_manifest(REPO, str(pushed.digest)))
    asyncio.run(second.delete_blob(REPO, parse_digest(_digest(b"layer"))))
    with pytest.raises(RegistryError) as refused:
        asyncio.run(first.put_manifest(REPO, "v2", _image(b"layer", "2"), None, []))
    assert refused.value.code is ErrorCode.MANIFEST_BLOB_UNKNOWN
    assert "v2" not in first.index(REPO).tags  # type: ignore[union-attr]


def test_a_blob_collected_by_another_instance_is_asked_again(driver: S3Driver) -> None:
    """The same with GC removing the layer (unreferenced, and old by GC's clock), in a
    repository that stays (a tagged image keeps it from being removed whole)."""
    first, second = _two_registries(driver)
    _store_blobs(driver, b"layer", b"kept")
    asyncio.run(second.put_manifest(REPO, "kept", _image(b"kept", "0"), None, []))
    pushed = asyncio.run(first.put_manifest(REPO, "v1", _image(b"layer", "1"), None, []))
    asyncio.run(second.delete_manifest(REPO, str(pushed.digest)))
    later = GarbageCollector(second, 60.0, clock=lambda: time.time() + 3600)
    collected = asyncio.run(later.collect(REPO))
    assert _digest(b"layer") in collected.blobs and not collected.repository_removed
    with pytest.raises(RegistryError) as refused:
        asyncio.run(first.put_manifest(REPO, "v2", _image(b"layer", "2"), None, []))
    assert refused.value.code is ErrorCode.MANIFEST_BLOB_UNKNOWN


def test_found_blobs_survive_pushes_by_another_instance(driver: S3Driver) -> None:
    """A push by another instance keeps the removals token: the blobs found stay found."""
    first, second = _two_registries(driver)
    _store_blobs(driver, b"layer")
    asyncio.run(first.put_manifest(REPO, "v1", _image(b"layer", "1"), None, []))
    asyncio.run(second.put_manifest(REPO, "v2", _image(b"layer", "2"), None, []))
    recorded = Recorded(driver)
    with recorded.during() as push:
        asyncio.run(first.put_manifest(REPO, "v3", _image(b"layer", "3"), None, []))
    assert "HeadObject" not in push.operations()


def test_found_blobs_are_bounded_across_repositories_least_recently_pushed_first(
    driver: S3Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each repository remembers its 2 blobs (config, layer); with room for 2 in all, a push
    to another repository makes the first one's blobs forgotten, and asked again."""
    monkeypatch.setattr(index_module, "_FOUND_TOTAL", 2)
    registry = Registry(driver, KeyedLocks(None))
    other = "team/other"
    for repo in (REPO, other):
        for data in (b'{"architecture":"amd64","os":"linux"}', b"layer"):
            driver.put_content(_key(_digest(data)).replace(REPO, repo, 1), data)
        asyncio.run(registry.put_manifest(repo, "v1", _image(b"layer", "1"), None, []))
    recorded = Recorded(driver)
    with recorded.during() as kept:
        asyncio.run(registry.put_manifest(other, "v2", _image(b"layer", "2"), None, []))
    with recorded.during() as forgotten:
        asyncio.run(registry.put_manifest(REPO, "v2", _image(b"layer", "2"), None, []))
    assert "HeadObject" not in kept.operations()
    assert forgotten.operations().count("HeadObject") == 2


def test_a_check_before_the_lock_does_not_ask_for_blobs_found_before(driver: S3Driver) -> None:
    """With a manifest-check extension (lint, trust) the blobs are checked before the lock
    too: those found under an earlier hold are not asked there either."""
    registry = Registry(driver, KeyedLocks(None))
    told: list[str] = []

    async def check(_: Registry, repo: str, manifest: Any) -> None:
        told.append(repo)

    registry.manifest_checks.append(check)
    _store_blobs(driver, b"layer")
    asyncio.run(registry.put_manifest(REPO, "v1", _image(b"layer", "1"), None, []))
    recorded = Recorded(driver)
    with recorded.during() as push:
        asyncio.run(registry.put_manifest(REPO, "v2", _image(b"layer", "2"), None, []))
    assert push.operations() == ["GetObject", "PutObject", "PutObject"]
    assert told == [REPO, REPO]
