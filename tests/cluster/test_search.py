"""How a GraphQL request is split over the members and their answers put together."""

from __future__ import annotations

from typing import Any

from graphql import parse, print_ast

from ocireg.cluster.search import Merger, Plan, repository_of


def _owner(name: str) -> int:
    return {"a": 0, "b": 1, "c": 2}[name.split("/")[0]]


def test_repository_of_an_image_reference() -> None:
    assert repository_of("team/app:v1") == "team/app"
    assert repository_of("team/app@sha256:ab") == "team/app"
    assert repository_of("host:5000/app") == "host:5000/app"
    assert repository_of("team/app") == "team/app"


def test_one_owner_answers_a_query_on_its_repositories_alone() -> None:
    both_b = '{ ImageList(repo: "b/x") { Results { Tag } } Image(image: "b/y:1") { Tag } }'
    assert Plan({"query": both_b}).answered_by(_owner, me=0) == 1
    assert Plan({"query": "{ __typename }"}).answered_by(_owner, me=2) == 2
    a_and_c = '{ x: ImageList(repo: "a/x") { Results { Tag } } y: Image(image: "c/y") { Tag } }'
    assert Plan({"query": a_and_c}).answered_by(_owner, me=0) is None
    every = "{ RepoListWithNewestImage { Page { TotalCount } } }"
    assert Plan({"query": every}).answered_by(_owner, me=1) is None


def test_widening_asks_every_member_from_offset_0_and_for_the_sort_keys() -> None:
    plan = Plan(
        {
            "query": "query Q($o: Int) { RepoListWithNewestImage("
            "requestedPage: {limit: 2, offset: $o}) { Results { Name } } }",
            "variables": {"o": 4},
        }
    )
    body = plan.widened()
    assert body["variables"] == {"o": 0}
    printed = print_ast(parse(body["query"]))
    assert "limit: 6" in printed
    assert "_ocireg_keys: Results" in printed and "StarCount" in printed
    assert plan.fields[0].offset == 4 and plan.fields[0].limit == 2


def _repos(*names: tuple[str, str], total: int | None = None) -> dict[str, Any]:
    keys = [{"Name": n, "LastUpdated": t, "Rank": 0} for n, t in names]
    return {
        "data": {
            "R": {
                "Results": [{"Name": n} for n, _ in names],
                "_ocireg_keys": keys,
                "_ocireg_page": {"TotalCount": len(names) if total is None else total},
                "Page": {"TotalCount": len(names), "ItemCount": len(names)},
            }
        }
    }


def test_the_merge_sorts_pages_and_counts_as_one_member_would() -> None:
    query = (
        "{ R: RepoListWithNewestImage(requestedPage: {limit: 2, offset: 1}) "
        "{ Page { TotalCount ItemCount } Results { Name } } }"
    )
    plan = Plan({"query": query})
    answers = [
        _repos(("a/old", "2024-01-01T00:00:00Z"), ("a/new", "2024-03-01T00:00:00Z")),
        _repos(("b/mid", "2024-02-01T00:00:00Z")),
        _repos(),
    ]
    merged = Merger(plan, answers, _owner, me=0).merged()
    # newest first over the cluster: a/new, b/mid, a/old; the page is the 2nd and 3rd
    assert merged == {
        "data": {
            "R": {
                "Page": {"TotalCount": 3, "ItemCount": 2},
                "Results": [{"Name": "b/mid"}, {"Name": "a/old"}],
            }
        }
    }


def test_errors_of_a_scoped_field_come_from_its_owner_only() -> None:
    plan = Plan(
        {
            "query": '{ x: ExpandedRepoInfo(repo: "c/x") { Summary { Name } } '
            "RepoListWithNewestImage { Results { Name } } }"
        }
    )
    error = {"message": "boom", "path": ["x"]}
    answers: list[dict[str, Any]] = [
        {
            "data": {"x": None, "RepoListWithNewestImage": None},
            "errors": [{"message": "no", "path": ["x"]}],
        },
        {"data": {"x": None, "RepoListWithNewestImage": None}},
        {"data": {"x": None, "RepoListWithNewestImage": None}, "errors": [error]},
    ]
    merged = Merger(plan, answers, _owner, me=0).merged()
    assert merged["errors"] == [error]
    assert merged["data"] == {"x": None, "RepoListWithNewestImage": None}
