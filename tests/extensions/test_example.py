"""The worked example of docs/extension-authors.md runs like any extension."""

from __future__ import annotations

import httpx

from tests.oci import error_codes, image_manifest, put_manifest


def test_quota_reports_usage_and_refuses_pushes_over_the_limit(ext_client: httpx.Client) -> None:
    repo = "example/quota"
    source = {"org.opencontainers.image.source": "https://example.com/src"}
    small = image_manifest(ext_client, repo, layers=[b"x" * 100], annotations=source)
    put_manifest(ext_client, repo, "small", small)
    usage = ext_client.get(f"/v2/{repo}/_example/ext/quota").json()
    assert usage["limitBytes"] == 4096
    assert 100 < usage["usedBytes"] < 4096

    big = image_manifest(ext_client, repo, layers=[b"y" * 5000], annotations=source)
    refused = put_manifest(ext_client, repo, "big", big, expect=403)  # its layer is uploaded
    assert error_codes(refused) == ["DENIED"]
    assert refused.json()["errors"][0]["detail"]["reason"] == "over quota"
    assert ext_client.head(f"/v2/{repo}/manifests/big").status_code == 404
    assert ext_client.head(f"/v2/{repo}/manifests/small").status_code == 200


def test_quota_of_an_unknown_repository(ext_client: httpx.Client) -> None:
    response = ext_client.get("/v2/example/none/_example/ext/quota")
    assert (response.status_code, error_codes(response)) == (404, ["NAME_UNKNOWN"])
