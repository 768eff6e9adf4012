"""GC of one repository, on the memory driver with a clock the test moves forward."""

from __future__ import annotations

import asyncio

from ocireg.digests import digest_bytes, parse_digest
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.registry.manifestcache import ManifestCache
from tests.registry.world import CONFIG, World


def test_untagged_manifests_and_their_blobs_go_once_old() -> None:
    world = World()
    kept = world.image("r", b"kept-layer", "v1")
    world.image("r", b"old-layer", "v2")
    asyncio.run(world.registry.delete_manifest("r", "v2"))  # untag: v2's manifest is untagged
    assert world.collect("r").total == 0  # young: nothing goes yet
    world.later()
    result = world.collect("r")
    assert len(result.manifests) == 1 and len(result.blobs) == 2  # manifest + old layer
    assert world.manifests("r") == {kept["digest"]}
    assert str(digest_bytes(b"kept-layer")) in world.blobs("r")
    assert str(digest_bytes(b"old-layer")) not in world.blobs("r")
    assert str(digest_bytes(CONFIG)) in world.blobs("r")  # shared config stays


def test_unreferenced_blobs_only_when_old() -> None:
    world = World()
    world.blob("r", b"dangling")
    assert world.collect("r").blobs == []
    world.later()
    assert world.collect("r").blobs == [str(digest_bytes(b"dangling"))]


def test_index_children_and_referrers_of_present_subjects_stay() -> None:
    world = World()
    child = world.image("r", b"child", "sha256:")
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child]}
    world.manifest("r", index, "multi")
    empty = world.blob("r", b"{}")
    empty["mediaType"] = mt.OCI_EMPTY
    referrer = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": empty,
        "layers": [world.blob("r", b"sbom")],
        "subject": child,
    }
    world.manifest("r", referrer, "sha256:")
    world.later()
    assert world.collect("r").total == 0
    # untag the index: it goes, then its child, then the child's referrer, in one run
    asyncio.run(world.registry.delete_manifest("r", "multi"))
    result = world.collect("r")
    assert len(result.manifests) == 3
    assert world.manifests("r") == set()
    assert world.blobs("r") == set()


def test_an_orphan_referrer_waits_for_its_subject_until_old() -> None:
    world = World()
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 10}
    empty = world.blob("r", b"{}")
    referrer = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {**empty, "mediaType": "application/vnd.example.sig"},
        "layers": [],
        "subject": subject,
    }
    pushed = world.manifest("r", referrer, "sha256:")
    assert world.collect("r").manifests == []  # the subject may still come
    world.later()
    assert world.collect("r").manifests == [pushed["digest"]]


def test_stale_uploads_go() -> None:
    world = World()
    asyncio.run(world.registry.ensure_repository("r"))
    session = asyncio.run(world.registry.uploads.start("r"))
    assert world.collect("r").uploads == []
    world.later()
    assert world.collect("r").uploads == [session]


def test_a_blob_mounted_or_pushed_again_looks_new() -> None:
    world = World()
    world.blob("src", b"shared")
    world.later()  # the source's copy is now old
    digest = digest_bytes(b"shared")
    assert asyncio.run(world.registry.mount_blob("dst", digest, ["src"]))
    assert world.collect("dst").blobs == []  # mounted just now: not collected
    world.blob("src", b"shared")  # pushed again: new again
    assert world.collect("src").blobs == []
    assert world.registry.has_blob("dst", parse_digest(str(digest)))


def test_a_manifest_that_cannot_be_read_keeps_every_blob() -> None:
    """Which blobs an unreadable manifest needs is unknown: GC removes none of them."""
    world = World()
    image = world.image("r", b"needed-layer", "v1")
    world.blob("r", b"dangling")
    path = layout.blob_file("r", parse_digest(image["digest"]))
    world.registry.driver.put_content(path, b"{not json")  # damaged in storage
    world.registry.parsed = ManifestCache()  # as after a restart: nothing parsed is remembered
    world.later()
    assert world.collect("r").blobs == []
    assert str(digest_bytes(b"needed-layer")) in world.blobs("r")
