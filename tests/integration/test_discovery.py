from __future__ import annotations

import httpx

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


def test_tags_sorted_and_paginated(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    names = ["b", "a", "C", "c", "a1", "0"]
    for tag in names:
        put_manifest(client, repo, tag, document)
    everything = client.get(f"/v2/{repo}/tags/list").json()
    assert everything == {"name": repo, "tags": sorted(names)}
    first = client.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["0", "C"]
    assert first.headers["Link"] == f'</v2/{repo}/tags/list?n=2&last=C>; rel="next"'
    after = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "a1"})
    assert after.json()["tags"] == ["b", "c"]
    assert "Link" not in after.headers
    assert client.get(f"/v2/{repo}/tags/list", params={"last": "b"}).json()["tags"] == ["c"]
    zero = client.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert zero.json()["tags"] == []
    assert "Link" not in zero.headers


def test_follow_link_headers(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo)
    tags = [f"t{i:02d}" for i in range(7)]
    for tag in tags:
        put_manifest(client, repo, tag, document)
    seen: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list?n=3"
    while url:
        response = client.get(url)
        seen += response.json()["tags"]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == tags


def test_tags_of_unknown_repository(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]


def test_bad_pagination(client: httpx.Client, repo: str) -> None:
    assert client.get(f"/v2/{repo}/tags/list", params={"n": -1}).status_code == 400
    assert client.get(f"/v2/{repo}/tags/list", params={"n": "x"}).status_code == 400


def test_catalog_lists_repositories(client: httpx.Client, repo: str) -> None:
    for suffix in ("a", "b", "a/nested"):
        push_blob(client, f"{repo}/{suffix}", b"x")
    repositories = client.get("/v2/_catalog").json()["repositories"]
    assert [r for r in repositories if r.startswith(repo + "/")] == [
        f"{repo}/a",
        f"{repo}/a/nested",
        f"{repo}/b",
    ]
    assert repositories == sorted(repositories)
    page = client.get("/v2/_catalog", params={"n": 1, "last": f"{repo}/a"})
    assert page.json()["repositories"] == [f"{repo}/a/nested"]
    assert 'rel="next"' in page.headers["Link"]


def _referrer(client: httpx.Client, repo: str, subject: dict[str, object], **fields: object) -> str:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": EMPTY,
        "layers": [],
        "subject": subject,
        **fields,
    }
    digest = sha256(canonical(document))
    put_manifest(client, repo, digest, document)
    return digest


def test_referrers(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, b"{}")
    image = image_manifest(client, repo)
    subject_digest = put_manifest(client, repo, "img", image).headers["Docker-Content-Digest"]
    subject = {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(canonical(image))}
    sig = _referrer(
        client, repo, subject, artifactType="application/vnd.example.sig", annotations={"k": "v"}
    )
    sbom = _referrer(client, repo, subject, artifactType="application/vnd.example.sbom")
    config_typed = image_manifest(client, repo, config=b'{"x":1}', subject=subject)
    config_typed["config"]["mediaType"] = "application/vnd.example.config"
    put_manifest(client, repo, sha256(canonical(config_typed)), config_typed)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "subject": subject}
    put_manifest(client, repo, sha256(canonical(index)), index)

    response = client.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in body["manifests"]}
    assert len(by_digest) == 4
    assert by_digest[sig]["artifactType"] == "application/vnd.example.sig"
    assert by_digest[sig]["annotations"] == {"k": "v"}
    assert (
        by_digest[sha256(canonical(config_typed))]["artifactType"]
        == "application/vnd.example.config"
    )
    assert "artifactType" not in by_digest[sha256(canonical(index))]

    filtered = client.get(
        f"/v2/{repo}/referrers/{subject_digest}",
        params={"artifactType": "application/vnd.example.sbom"},
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom]


def test_referrers_of_unknown_subject_is_empty(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/referrers/{sha256(b'nothing')}")
    assert response.status_code == 200
    assert response.json()["manifests"] == []
    bad = client.get(f"/v2/{repo}/referrers/sha256:nope")
    assert bad.status_code == 400
    assert error_codes(bad) == ["DIGEST_INVALID"]
