from __future__ import annotations

import json

import httpx
import pytest

from tests.liveserver import LiveServer
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_push_by_tag_then_pull_exact_bytes(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo, annotations={"a": "b"})
    document["newUnspecifiedField"] = {"kept": True}
    body = json.dumps(document, indent=3).encode()  # not canonical: bytes must survive as sent
    response = client.put(
        f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    digest = sha256(body)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"] == f"/v2/{repo}/manifests/{digest}"
    for reference in ("v1", digest):
        got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        head = client.head(f"/v2/{repo}/manifests/{reference}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Docker-Content-Digest"] == digest


def test_manifest_without_layers(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, b"{}")
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": EMPTY, "layers": []}
    put_manifest(client, repo, "empty", document)


def test_push_by_digest_with_tags(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    digest = sha256(canonical(document))
    response = put_manifest(client, repo, digest, document, params={"tag": ["a", "b", "c"]})
    assert response.headers.get_list("OCI-Tag") == ["a", "b", "c"]
    tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert tags == ["a", "b", "c"]


def test_push_by_wrong_digest(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    response = put_manifest(client, repo, sha256(b"other"), document, expect=400)
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_missing_blob_is_manifest_blob_unknown(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    document["layers"].append(
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"?"), "size": 1}
    )
    document["layers"].append(dict(document["layers"][-1]))  # named twice, missing once
    response = put_manifest(client, repo, "broken", document, expect=404)
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"]["missing"] == [sha256(b"?")]
    assert client.get(f"/v2/{repo}/manifests/broken").status_code == 404


@pytest.mark.parametrize(
    ("mutate", "content_type"),
    [
        (lambda d: d.pop("config"), OCI_MANIFEST),
        (lambda d: d.update(schemaVersion=1), OCI_MANIFEST),
        (lambda d: d.update(layers="nope"), OCI_MANIFEST),
        (lambda d: d["config"].update(digest="sha256:bad"), OCI_MANIFEST),
        (lambda d: d["config"].update(size=-1), OCI_MANIFEST),
        # sizes beyond int64 are no size any client can hold, and poisoned the meta DB
        (lambda d: d["config"].update(size=2**63), OCI_MANIFEST),
        (lambda d: d["layers"][0].update(size=2**64 + 5), OCI_MANIFEST),
        (lambda d: d.update(subject={**d["config"], "size": 2**63}), OCI_MANIFEST),
        (lambda d: d["config"].update(mediaType="not a type"), OCI_MANIFEST),
        (lambda d: d.update(annotations={"a": 1}), OCI_MANIFEST),
        (lambda d: None, OCI_INDEX),  # body says manifest, header says index
        (lambda d: None, "text/plain"),
    ],
)
def test_invalid_manifests(client: httpx.Client, repo: str, mutate, content_type: str) -> None:  # type: ignore[no-untyped-def]
    document = image_manifest(client, repo)
    mutate(document)
    response = put_manifest(client, repo, "bad", document, media_type=content_type, expect=400)
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert client.get(f"/v2/{repo}/manifests/bad").status_code == 404


def test_not_json(client: httpx.Client, repo: str) -> None:
    response = client.put(
        f"/v2/{repo}/manifests/x", content=b"\xff\xfe{", headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda text: "\ufeff" + text, "BOM"),
        (lambda text: text.replace('"schemaVersion":2', '"schemaVersion":2.0'), "schemaVersion"),
        (lambda text: text[:-1] + ',"annotations":{"a":"1","a":"2"}}', "duplicate key"),
        (lambda text: text[:-1] + ',"x":Infinity}', "Infinity"),
        (lambda text: text[:-1] + ',"x":NaN}', "NaN"),
        (lambda text: text[:-1] + ',"annotations":{"a":"\\ud800"}}', "surrogate"),
    ],
)
def test_manifests_must_be_plain_json(client: httpx.Client, repo: str, edit, why: str) -> None:  # type: ignore[no-untyped-def]
    """What lenient parsers accept and strict clients refuse is never stored."""
    text = canonical(image_manifest(client, repo)).decode()
    body = edit(text).encode()
    response = client.put(
        f"/v2/{repo}/manifests/lenient", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert (response.status_code, error_codes(response)) == (400, ["MANIFEST_INVALID"]), why
    assert client.get(f"/v2/{repo}/manifests/lenient").status_code == 404
    paired = edit(text).replace("\\ud800", "\\ud83d\\ude00") if why == "surrogate" else None
    if paired is not None:  # a pair of escapes is one character: fine
        ok = client.put(f"/v2/{repo}/manifests/paired", content=paired.encode(),
                        headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
        assert ok.status_code == 201, ok.text


def test_deeply_nested_manifest_is_400(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    nested = json.dumps(document)[:-1] + ', "annotations": {"x": ' + "[" * 1_000 + "]" * 1_000
    response = client.put(f"/v2/{repo}/manifests/deep", content=(nested + "}}").encode(),
                          headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
    assert response.status_code == 400, response.text
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert client.head(f"/v2/{repo}/manifests/deep").status_code == 404


def test_oversize_manifest_is_413(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo, annotations={"big": "x" * (4 * 1024 * 1024)})
    response = put_manifest(client, repo, "huge", document, expect=413)
    assert error_codes(response) == ["MANIFEST_INVALID"]


@pytest.mark.parametrize("reference", ["-bad-tag", ".INVALID_MANIFEST_NAME", "sha256:totallywrong"])
def test_reading_a_malformed_reference_is_404(
    client: httpx.Client, repo: str, reference: str
) -> None:
    """The official conformance suite asks 404 for GET and HEAD of `.INVALID_MANIFEST_NAME`:
    a manifest that is not found MUST be 404, whatever the reference looks like."""
    put_manifest(client, repo, "v1", image_manifest(client, repo))
    response = client.get(f"/v2/{repo}/manifests/{reference}")
    assert response.status_code == 404
    [error] = response.json()["errors"]
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert error["detail"]["reason"].startswith("malformed reference: ")
    head = client.head(f"/v2/{repo}/manifests/{reference}")
    assert (head.status_code, head.content) == (404, b"")


def test_writing_a_malformed_reference_is_400(client: httpx.Client, repo: str) -> None:
    """A PUT or DELETE sends something invalid: 400 with the legacy code that names it."""
    manifest = image_manifest(client, repo)
    response = put_manifest(client, repo, "-bad-tag", manifest, expect=400)
    assert error_codes(response) == ["TAG_INVALID"]
    wrong = client.delete(f"/v2/{repo}/manifests/sha256:totallywrong")
    assert wrong.status_code == 400
    assert error_codes(wrong) == ["DIGEST_INVALID"]


def test_missing_manifest(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/manifests/nope")
    assert response.status_code == 404
    assert error_codes(response) == ["MANIFEST_UNKNOWN"]
    assert client.head(f"/v2/{repo}/manifests/nope").status_code == 404


def _index(client: httpx.Client, repo: str) -> tuple[dict[str, object], list[str]]:
    children = []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        child = image_manifest(client, repo, config=config, layers=[arch.encode()])
        digest = sha256(canonical(child))
        put_manifest(client, repo, digest, child)
        children.append(digest)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": d,
                "size": 0,
                "platform": {"architecture": a, "os": "linux"},
            }
            for d, a in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }
    for entry, digest in zip(index["manifests"], children, strict=True):  # type: ignore[arg-type]
        entry["size"] = len(client.get(f"/v2/{repo}/manifests/{digest}").content)
    return index, children


def test_index_push_and_child_protection(client: httpx.Client, repo: str) -> None:
    index, children = _index(client, repo)
    put_manifest(client, repo, "multi", index)
    denied = client.delete(f"/v2/{repo}/manifests/{children[0]}")
    assert denied.status_code == 405
    assert error_codes(denied) == ["DENIED"]
    assert client.delete(f"/v2/{repo}/manifests/multi").status_code == 202


def test_index_with_missing_child(client: httpx.Client, repo: str) -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no"), "size": 2}],
    }
    response = put_manifest(client, repo, "idx", index, expect=404)
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_an_index_child_beyond_int64_is_invalid(client: httpx.Client, repo: str) -> None:
    child = {"mediaType": OCI_MANIFEST, "digest": sha256(b"no"), "size": 2**63}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}
    response = put_manifest(client, repo, "idx", index, expect=400)
    assert error_codes(response) == ["MANIFEST_INVALID"]
    assert response.json()["errors"][0]["detail"]["field"] == "manifests[0].size"


def test_the_largest_int64_size_is_accepted(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    document["layers"][0]["size"] = 2**63 - 1
    put_manifest(client, repo, "v1", document)


def test_delete_tag_keeps_manifest(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    digest = put_manifest(client, repo, "t1", document).headers["Docker-Content-Digest"]
    assert client.delete(f"/v2/{repo}/manifests/t1").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/t1").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 200


def test_delete_manifest_removes_every_tag(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    put_manifest(client, repo, "x1", document)
    digest = put_manifest(client, repo, "x2", document).headers["Docker-Content-Digest"]
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    for reference in ("x1", "x2", digest):
        assert client.get(f"/v2/{repo}/manifests/{reference}").status_code == 404
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 404


def test_tag_overwrite_moves_the_tag(client: httpx.Client, repo: str) -> None:
    first = image_manifest(client, repo, layers=[b"one"])
    second = image_manifest(client, repo, layers=[b"two"])
    put_manifest(client, repo, "latest", first)
    digest = put_manifest(client, repo, "latest", second).headers["Docker-Content-Digest"]
    assert client.get(f"/v2/{repo}/manifests/latest").headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{repo}/manifests/{sha256(canonical(first))}").status_code == 200


def test_docker_schema2_manifest(client: httpx.Client, repo: str) -> None:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    push_blob(client, repo, config)
    layer = b"docker layer"
    push_blob(client, repo, layer)
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": sha256(layer),
                "size": len(layer),
            }
        ],
    }
    put_manifest(client, repo, "docker", document)
    got = client.get(f"/v2/{repo}/manifests/docker")
    assert got.headers["Content-Type"] == DOCKER_MANIFEST


def test_subject_push_answers_oci_subject(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": sha256(b"not pushed yet"), "size": 14}
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": EMPTY,
        "layers": [],
        "subject": subject,
    }
    response = put_manifest(client, repo, sha256(canonical(document)), document)
    assert response.headers["OCI-Subject"] == subject["digest"]


def test_a_push_writes_no_framework_noise_to_the_log(
    client: httpx.Client, repo: str, server: LiveServer
) -> None:
    put_manifest(client, repo, "quiet", image_manifest(client, repo))
    noisy = [line for line in server.log_lines() if "accepts multiple content types" in line]
    assert noisy == []


def test_many_tags_of_one_repository_stay_consistent(client: httpx.Client, repo: str) -> None:
    first, second = image_manifest(client, repo), image_manifest(client, repo, layers=[b"x"])
    for n in range(60):
        put_manifest(client, repo, f"t{n:02d}", first if n % 2 else second)
    put_manifest(client, repo, "t00", first)  # retag: the old manifest stays, untagged
    tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert tags == [f"t{n:02d}" for n in range(60)]
    for n in (0, 1, 2, 59):
        digest = client.get(f"/v2/{repo}/manifests/t{n:02d}").headers["Docker-Content-Digest"]
        expected = first if n % 2 or n == 0 else second
        assert digest == sha256(canonical(expected))
    client.delete(f"/v2/{repo}/manifests/t01")
    assert client.get(f"/v2/{repo}/manifests/t01").status_code == 404
    assert len(client.get(f"/v2/{repo}/tags/list").json()["tags"]) == 59
