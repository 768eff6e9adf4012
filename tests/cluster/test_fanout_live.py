"""The catalog and GraphQL search from any member: every member's repositories, merged,
sorted and paged as one registry would, the same answer from every member (zot #4215)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cluster.members3 import owned_by, three_members
from tests.liveserver import LiveServer
from tests.oci import image_manifest, put_manifest

SEARCH = "/v2/_zot/ext/search"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveServer]]:
    extra = {"extensions": {"search": {"enable": True}}}
    with three_members(tmp_path_factory.mktemp("fanout"), extra) as live:
        yield live


@pytest.fixture(scope="module")
def repos(members: list[LiveServer]) -> list[str]:
    """Two repositories per member, each pushed through a member that does not own it."""
    names = sorted(owned_by(owner, "fan/app-", skip) for owner in range(3) for skip in range(2))
    for k, name in enumerate(names):
        with httpx.Client(base_url=members[k % 3].url, timeout=30) as client:
            document = image_manifest(client, name, layers=[name.encode()])
            put_manifest(client, name, "v1", document)
            if k % 2 == 0:
                put_manifest(
                    client, name, "v2", image_manifest(client, name, layers=[b"x" + name.encode()])
                )
    return names


def _all_pages(member: LiveServer, n: int) -> list[str]:
    found: list[str] = []
    url: str | None = f"/v2/_catalog?n={n}"
    with httpx.Client(base_url=member.url, timeout=30) as client:
        while url:
            answer = client.get(url)
            assert answer.status_code == 200, answer.text
            page = answer.json()["repositories"]
            assert len(page) <= n
            found += page
            link = answer.headers.get("Link")
            url = link.split(";")[0].strip("<>") if link else None
    return found


def test_the_catalog_is_the_same_from_every_member(
    members: list[LiveServer], repos: list[str]
) -> None:
    for member in members:
        whole = httpx.get(member.url + "/v2/_catalog", timeout=30)
        assert whole.status_code == 200
        assert whole.json()["repositories"] == repos
        assert "Link" not in whole.headers
        assert _all_pages(member, 4) == repos
        assert _all_pages(member, 1) == repos
        after = httpx.get(member.url + "/v2/_catalog", params={"n": 2, "last": repos[2]})
        assert after.json()["repositories"] == repos[3:5]


def test_a_bad_catalog_query_gets_the_members_own_error(members: list[LiveServer]) -> None:
    answer = httpx.get(members[0].url + "/v2/_catalog", params={"n": "many"}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["errors"]


def _search(member: LiveServer, query: str) -> dict[str, Any]:
    answer = httpx.post(member.url + SEARCH, json={"query": query}, timeout=30)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _settled(members: list[LiveServer], query: str, done: Any) -> list[dict[str, Any]]:
    """Each member's answer, once every member's meta DB has caught up with the pushes."""
    deadline = time.monotonic() + 30
    while True:
        answers = [_search(m, query) for m in members]
        if all(done(a) for a in answers) or time.monotonic() > deadline:
            return answers
        time.sleep(0.2)


NEWEST = "{ RepoListWithNewestImage { Page { TotalCount ItemCount } Results { Name } } }"


def test_search_is_the_same_from_every_member(members: list[LiveServer], repos: list[str]) -> None:
    def names(a: dict[str, Any]) -> list[str]:
        return [r["Name"] for r in a["data"]["RepoListWithNewestImage"]["Results"]]

    answers = _settled(members, NEWEST, lambda a: len(names(a)) == len(repos))
    assert all("errors" not in a for a in answers)
    assert answers[0] == answers[1] == answers[2]
    assert sorted(names(answers[0])) == repos
    assert answers[0]["data"]["RepoListWithNewestImage"]["Page"] == {
        "TotalCount": 6,
        "ItemCount": 6,
    }

    alphabetic = (
        '{ GlobalSearch(query: "fan/app", requestedPage: {limit: 2, offset: %d, '
        "sortBy: ALPHABETIC_ASC}) { Page { TotalCount ItemCount } Repos { Name } } }"
    )
    for member in members:
        pages = [
            _search(member, alphabetic % offset)["data"]["GlobalSearch"] for offset in (0, 2, 4)
        ]
        assert [r["Name"] for p in pages for r in p["Repos"]] == repos
        assert all(p["Page"] == {"TotalCount": 6, "ItemCount": 2} for p in pages)


def test_image_lists_merge_and_one_repository_is_asked_of_its_owner(
    members: list[LiveServer], repos: list[str]
) -> None:
    every = '{ ImageList(repo: "") { Page { TotalCount } Results { RepoName Tag } } }'
    answers = _settled(members, every, lambda a: a["data"]["ImageList"]["Page"]["TotalCount"] == 9)
    expected = sorted(
        (r, t) for k, r in enumerate(repos) for t in (["v1", "v2"] if k % 2 == 0 else ["v1"])
    )
    for answer in answers:
        results = answer["data"]["ImageList"]["Results"]
        assert [(i["RepoName"], i["Tag"]) for i in results] == expected
    one = repos[1]
    scoped = (
        f'{{ ImageList(repo: "{one}") {{ Results {{ Tag }} }} '
        f'ExpandedRepoInfo(repo: "{one}") {{ Summary {{ Name }} }} }}'
    )
    for member in members:
        answer = _search(member, scoped)
        assert answer["data"]["ImageList"]["Results"] == [{"Tag": "v1"}]
        assert answer["data"]["ExpandedRepoInfo"]["Summary"]["Name"] == one
    mixed = (
        f'{{ own: ImageList(repo: "{repos[0]}") {{ Results {{ Tag }} }} '
        f'other: ImageList(repo: "{repos[1]}") {{ Results {{ Tag }} }} }}'
    )
    for member in members:
        answer = _search(member, mixed)
        assert sorted(i["Tag"] for i in answer["data"]["own"]["Results"]) == ["v1", "v2"]
        assert answer["data"]["other"]["Results"] == [{"Tag": "v1"}]


def test_search_by_get_with_fragments_variables_and_aliases(
    members: list[LiveServer], repos: list[str]
) -> None:
    query = """
      query Page($page: PageInput) {
        found: GlobalSearch(query: "fan/", requestedPage: $page) {
          info: Page { total: TotalCount }
          ...Names
        }
      }
      fragment Names on GlobalSearchResult { Repos { name: Name } }
    """
    for member in members:
        answer = httpx.get(
            member.url + SEARCH,
            params={
                "query": query,
                "variables": '{"page": {"limit": 3, "offset": 3, "sortBy": "ALPHABETIC_DSC"}}',
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        found = answer.json()["data"]["found"]
        assert [r["name"] for r in found["Repos"]] == sorted(repos, reverse=True)[3:6]
        assert found["info"] == {"total": 6}
        assert "_ocireg_keys_repos" not in found


def test_introspection_and_query_errors_come_back_once(members: list[LiveServer]) -> None:
    typename = _search(members[1], "{ __typename }")
    assert typename == {"data": {"__typename": "Query"}}
    broken = httpx.post(members[0].url + SEARCH, json={"query": "{ NoSuchField }"}, timeout=30)
    assert broken.status_code == 200
    assert len(broken.json()["errors"]) == 1
