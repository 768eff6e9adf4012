"""Scrub finds the blob whose bytes no longer match, image by image."""

from __future__ import annotations

from ocireg.digests import digest_bytes, parse_digest
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.registry.scrub import ScrubResult, scrub_repository
from tests.registry.world import CONFIG, World


def corrupt(world: World, repo: str, digest: str) -> None:
    path = layout.blob_file(repo, parse_digest(digest))
    data = bytearray(world.registry.driver.get_content(path))
    data[0] ^= 0xFF
    world.registry.driver.put_content(path, bytes(data))


def results(world: World, repo: str) -> dict[str, ScrubResult]:
    return {r.reference: r for r in scrub_repository(world.registry, repo)}


def test_every_image_ok_then_a_flipped_layer_byte_is_reported() -> None:
    world = World()
    world.image("r", b"layer-one", "v1")
    untagged = world.image("r", b"layer-two", "sha256:")
    assert {ref: r.status for ref, r in results(world, "r").items()} == {
        "v1": "ok",
        untagged["digest"]: "ok",
    }
    layer = str(digest_bytes(b"layer-one"))
    corrupt(world, "r", layer)
    found = results(world, "r")
    assert (found["v1"].status, found["v1"].affected_blob) == ("affected", layer)
    assert found["v1"].error == "content does not match its digest"
    assert found[untagged["digest"]].ok


def test_corrupt_manifest_and_missing_config() -> None:
    world = World()
    manifest = world.image("r", b"layer", "v1")
    corrupt(world, "r", manifest["digest"])
    assert results(world, "r")["v1"].affected_blob == manifest["digest"]

    other = World()
    other.image("r", b"layer", "v1")
    config = str(digest_bytes(CONFIG))
    other.registry.driver.delete(layout.blob_file("r", parse_digest(config)))
    found = results(other, "r")["v1"]
    assert (found.affected_blob, found.error) == (config, "blob missing")


def test_an_index_is_affected_through_its_child() -> None:
    world = World()
    child = world.image("r", b"child-layer", "sha256:")
    world.manifest(
        "r", {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child]}, "multi"
    )
    corrupt(world, "r", str(digest_bytes(b"child-layer")))
    found = results(world, "r")
    assert found["multi"].affected_blob == str(digest_bytes(b"child-layer"))
    assert found[child["digest"]].status == "affected"
