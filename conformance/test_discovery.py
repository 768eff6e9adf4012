"""Content discovery: tags lists with paging, and the referrers API (spec §Content Discovery)."""

from __future__ import annotations

import re

import httpx
import pytest

from ocireg.conformance.checks import (
    describe,
    expect,
    expect_error_code,
    expect_header,
    expect_status,
)
from ocireg.conformance.content import OCI_INDEX, Blob, Manifest, empty_config, image, index
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("discovery")

TAGS = "Listing Tags (end-8a, end-8b)"
REFERRERS = "Listing Referrers (end-12a, end-12b)"
ERRORS = "Error Codes"
BAGEL = "application/vnd.nhl.peanut.butter.bagel"
SBOM_CONFIG = "application/vnd.example.sbom.config"
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@pytest.fixture(scope="module")
def tagged(registry: Registry, repo: str, settings: Settings) -> list[str]:
    """Five tags of this run, pushed out of order; the repository may hold others too."""
    manifest = image(layers=1)
    tags = [f"disc-{settings.run_id}-{name}" for name in ("e", "b", "d", "a", "c")]
    registry.push_manifest(repo, tags[0], manifest)
    for tag in tags[1:]:
        response = registry.put_manifest(repo, tag, manifest)
        expect_status(response, 201, "Pushing Manifests (end-7)")
    return sorted(tags)


def listed(client: httpx.Client, repo: str, **params: str | int) -> httpx.Response:
    response = client.get(f"/v2/{repo}/tags/list", params=params)
    expect_status(response, 200, TAGS)
    return response


def tags_of(response: httpx.Response) -> list[str]:
    document = response.json()
    expect(isinstance(document.get("tags"), list), TAGS, f"{describe(response)}: no tags list")
    return [str(tag) for tag in document["tags"]]


def test_tags_list_is_sorted_and_complete(
    client: httpx.Client, repo: str, tagged: list[str]
) -> None:
    response = listed(client, repo)
    document = response.json()
    expect(document.get("name") == repo, TAGS, f"name is {document.get('name')!r}, not {repo!r}")
    tags = tags_of(response)
    expect(set(tagged) <= set(tags), TAGS, f"pushed tags {tagged} missing from {tags}")
    expect(tags == sorted(tags), TAGS, f"tags are not in lexical order: {tags}")


def test_tags_list_n(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    everything = tags_of(listed(client, repo))
    response = listed(client, repo, n=2)
    page = tags_of(response)
    expect(
        page == everything[:2] or (len(page) < 2 and "Link" in response.headers),
        TAGS + " ?n=",
        f"?n=2 answered {page}, expected the first two tags {everything[:2]}",
    )


def test_tags_list_n_and_last(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    everything = tags_of(listed(client, repo))
    after = tagged[1]
    start = everything.index(after) + 1
    page = tags_of(listed(client, repo, n=2, last=after))
    expect(
        page == everything[start : start + 2],
        TAGS + " ?n=&last=",
        f"?n=2&last={after} answered {page}, expected {everything[start : start + 2]}",
    )


def test_tags_list_last_alone(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    everything = tags_of(listed(client, repo))
    after = tagged[2]
    page = tags_of(listed(client, repo, last=after))
    expected = everything[everything.index(after) + 1 :]
    expect(page == expected, TAGS + " ?last=", f"?last={after} answered {page}, not {expected}")


def test_tags_list_n_zero(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    response = listed(client, repo, n=0)
    expect(tags_of(response) == [], TAGS + " ?n=0", f"?n=0 answered {tags_of(response)}")
    expect("Link" not in response.headers, TAGS + " ?n=0", "?n=0 answered with a Link header")


def test_tags_list_link_walks_every_tag(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    everything = tags_of(listed(client, repo))
    collected: list[str] = []
    response = listed(client, repo, n=2)
    for _ in range(len(everything) + 1):
        collected += tags_of(response)
        link = response.headers.get("Link")
        if link is None:
            break
        match = NEXT_LINK.search(link)
        expect(match is not None, TAGS + " Link", f"Link {link!r} is not an RFC 5988 next link")
        assert match is not None
        response = client.get(match[1])
        expect_status(response, 200, TAGS + " Link")
    expect(collected == everything, TAGS + " Link", f"paging gave {collected}, not {everything}")


def test_tags_list_of_missing_repository_is_404(client: httpx.Client, settings: Settings) -> None:
    response = client.get(f"/v2/no-such-repo-{settings.run_id}/tags/list")
    expect_status(response, 404, TAGS)
    expect_error_code(response, ("NAME_UNKNOWN",), ERRORS)


class Referrers:
    """A subject and five referrers: two by config type, two by artifactType, one index."""

    def __init__(self, registry: Registry, repo: str) -> None:
        self.subject = image(layers=1)
        registry.push_manifest(repo, self.subject.digest, self.subject)
        sbom = Blob(b'{"sbom": true}', SBOM_CONFIG)
        self.by_config = [
            image(layers=1, config=sbom, subject=self.subject, annotations={"n": str(i)})
            for i in range(2)
        ]
        self.by_artifact_type = [
            image(
                layers=1,
                artifact_type=BAGEL,
                config=empty_config(),
                subject=self.subject,
                annotations={"n": str(i + 2)},
            )
            for i in range(2)
        ]
        child = image(layers=1)
        registry.push_manifest(repo, child.digest, child)
        self.index = index([child], subject=self.subject, annotations={"n": "4"})
        self.subject_headers: dict[str, str | None] = {}
        for referrer in [*self.by_config, *self.by_artifact_type, self.index]:
            response = registry.push_manifest(repo, referrer.digest, referrer)
            self.subject_headers[referrer.digest] = response.headers.get("OCI-Subject")

    @property
    def all(self) -> list[Manifest]:
        return [*self.by_config, *self.by_artifact_type, self.index]


@pytest.fixture(scope="module")
def referrers(registry: Registry, repo: str) -> Referrers:
    return Referrers(registry, repo)


def list_referrers(client: httpx.Client, repo: str, digest: str, **params: str) -> httpx.Response:
    response = client.get(f"/v2/{repo}/referrers/{digest}", params=params)
    expect_status(response, 200, REFERRERS)
    content_type = expect_header(response, "Content-Type", REFERRERS).split(";")[0]
    expect(content_type == OCI_INDEX, REFERRERS, f"Content-Type {content_type!r}, not {OCI_INDEX}")
    document = response.json()
    expect(
        document.get("schemaVersion") == 2 and document.get("mediaType") == OCI_INDEX,
        REFERRERS,
        f"the answer is not an image index: {document}",
    )
    expect(isinstance(document.get("manifests"), list), REFERRERS, "no manifests list")
    return response


def test_subject_pushes_answer_oci_subject(referrers: Referrers) -> None:
    for referrer in referrers.all:
        header = referrers.subject_headers[referrer.digest]
        expect(
            header == referrers.subject.digest,
            "Pushing Manifests with Subject (end-7)",
            f"OCI-Subject was {header!r} for referrer {referrer.digest}",
        )


def test_referrers_lists_every_referrer(
    client: httpx.Client, repo: str, referrers: Referrers
) -> None:
    response = list_referrers(client, repo, referrers.subject.digest)
    found = {d["digest"]: d for d in response.json()["manifests"]}
    expected = {r.digest for r in referrers.all}
    expect(
        set(found) == expected, REFERRERS, f"listed {sorted(found)}, expected {sorted(expected)}"
    )
    for referrer in referrers.all:
        descriptor = found[referrer.digest]
        expect(
            descriptor.get("mediaType") == referrer.media_type
            and descriptor.get("size") == len(referrer.body),
            REFERRERS,
            f"descriptor {descriptor} has the wrong mediaType or size",
        )
        wanted = referrer.document.get("annotations")
        expect(descriptor.get("annotations") == wanted, REFERRERS, f"annotations of {descriptor}")


def test_referrers_artifact_types(client: httpx.Client, repo: str, referrers: Referrers) -> None:
    found = {
        d["digest"]: d.get("artifactType")
        for d in list_referrers(client, repo, referrers.subject.digest).json()["manifests"]
    }
    for referrer in referrers.by_config:
        expect(found.get(referrer.digest) == SBOM_CONFIG, REFERRERS, "config.mediaType is the type")
    for referrer in referrers.by_artifact_type:
        expect(found.get(referrer.digest) == BAGEL, REFERRERS, "artifactType is listed as given")
    expect(found.get(referrers.index.digest) is None, REFERRERS, "an index without artifactType")


def test_referrers_filtered_by_artifact_type(
    client: httpx.Client, repo: str, referrers: Referrers
) -> None:
    response = list_referrers(client, repo, referrers.subject.digest, artifactType=BAGEL)
    listed_digests = {d["digest"] for d in response.json()["manifests"]}
    applied = response.headers.get("OCI-Filters-Applied")
    expect(
        applied == "artifactType", REFERRERS + " filtering", f"OCI-Filters-Applied is {applied!r}"
    )
    expected = {r.digest for r in referrers.by_artifact_type}
    expect(listed_digests == expected, REFERRERS + " filtering", f"filtered list {listed_digests}")


def test_referrers_of_unknown_subject_is_empty(client: httpx.Client, repo: str) -> None:
    unknown = image(layers=1)
    response = list_referrers(client, repo, unknown.digest)
    expect(response.json()["manifests"] == [], REFERRERS, "an unknown subject has no referrers")


def test_referrers_of_invalid_digest_is_400(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/referrers/sha256:not-a-digest")
    expect_status(response, 400, REFERRERS + " invalid digest")
    expect_error_code(response, ("DIGEST_INVALID",), ERRORS)


def test_referrer_of_a_subject_never_pushed_is_listed(
    client: httpx.Client, registry: Registry, repo: str
) -> None:
    absent = image(layers=1)
    referrer = image(layers=0, artifact_type=BAGEL, config=empty_config(), subject=absent)
    registry.push_manifest(repo, referrer.digest, referrer)
    response = list_referrers(client, repo, absent.digest)
    digests = [d["digest"] for d in response.json()["manifests"]]
    expect(digests == [referrer.digest], REFERRERS, f"listed {digests}, not the one referrer")
