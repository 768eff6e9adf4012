"""Extension state on two instances that share one bucket and one PostgreSQL meta DB: stars set
through one are seen through the other, and trust keys uploaded through one judge signatures
pushed through the other."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.auth.registries import EVERY_ACTION, write_htpasswd
from tests.ext.cosigning import Signer, push_legacy
from tests.oci import OCI_MANIFEST, canonical, descriptor, image_manifest, put_manifest
from tests.postgres import Postgres, postgres
from tests.s3server import S3Endpoint, s3_endpoint
from tests.sharedinstances import two_instances

__all__ = ["postgres", "s3_endpoint"]  # session fixtures, used here by name

SEARCH = "/v2/_zot/ext/search"
PREFS = "/v2/_zot/ext/userprefs"
COSIGN = "/v2/_zot/ext/cosign"


def _search(client: httpx.Client, query: str) -> Any:
    answer = client.post(SEARCH, json={"query": query})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _eventually(probe: Callable[[], Any], wanted: Callable[[Any], bool]) -> Any:
    """``probe()`` once ``wanted`` holds of it (work that runs in the background), or at 30 s."""
    deadline = time.monotonic() + 30
    while True:
        found = probe()
        if wanted(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _push_image(client: httpx.Client, repo: str) -> str:
    manifest = image_manifest(client, repo, [repo.encode()])
    put_manifest(client, repo, "v1", manifest)
    digest: str = descriptor(OCI_MANIFEST, canonical(manifest))["digest"]
    return digest


def test_a_star_set_on_one_instance_is_seen_on_the_other(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"ann": "ann-pw"})
    http = {
        "auth": {"htpasswd": {"path": str(htpasswd)}},
        "accessControl": {
            "repositories": {"**": {"policies": [{"users": ["ann"], "actions": EVERY_ACTION}]}}
        },
    }
    extra = {"http": http, "extensions": {"search": {}, "userprefs": {}}}
    with (
        two_instances(tmp_path, s3_endpoint, postgres, extra) as (one, two),
        httpx.Client(base_url=one.url, auth=("ann", "ann-pw"), timeout=30) as first,
        httpx.Client(base_url=two.url, auth=("ann", "ann-pw"), timeout=30) as second,
    ):
        _push_image(first, "team/starred")
        _push_image(first, "team/plain")
        starred = "{ StarredRepos { Results { Name StarCount IsStarred } } }"

        def stars() -> Any:
            return _search(second, starred)["StarredRepos"]["Results"]

        assert stars() == []
        params = {"action": "toggleStar", "repo": "team/starred"}
        assert first.put(PREFS, params=params).status_code == 200
        wanted = [{"Name": "team/starred", "StarCount": 1, "IsStarred": True}]
        assert _eventually(stars, lambda found: found == wanted) == wanted
        assert second.put(PREFS, params=params).status_code == 200  # unstarred on two

        def stars_on_one() -> Any:
            return _search(first, starred)["StarredRepos"]["Results"]

        assert _eventually(stars_on_one, lambda found: found == []) == []


def test_a_trust_key_uploaded_on_one_instance_judges_signatures_pushed_on_the_other(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    extra = {"extensions": {"search": {}, "trust": {"cosign": True}}}
    with (
        two_instances(tmp_path, s3_endpoint, postgres, extra) as (one, two),
        httpx.Client(base_url=one.url, timeout=30) as first,
        httpx.Client(base_url=two.url, timeout=30) as second,
    ):
        signer = Signer.ecdsa()
        uploaded = first.post(COSIGN, content=signer.public_pem())
        assert uploaded.status_code == 200, uploaded.text
        key = uploaded.json()["digest"]
        assert [k["digest"] for k in second.get(COSIGN).json()["keys"]] == [key]
        repo = "signed/app"
        subject = _push_image(second, repo)
        push_legacy(second, repo, subject, signer)  # judged by the second instance
        query = f'{{ Image(image: "{repo}:v1") {{ SignatureInfo {{ Tool IsTrusted }} }} }}'

        def signatures() -> Any:
            data = _search(first, query)
            return data["Image"]["SignatureInfo"] if data else None

        trusted = [{"Tool": "cosign", "IsTrusted": True}]
        assert _eventually(signatures, lambda found: found == trusted) == trusted
        # removed through the second instance: gone from the first, and trust with it
        assert second.delete(COSIGN, params={"digest": key}).status_code == 200
        assert first.get(COSIGN).json()["keys"] == []
        untrusted = [{"Tool": "cosign", "IsTrusted": False}]
        assert _eventually(signatures, lambda found: found == untrusted) == untrusted
