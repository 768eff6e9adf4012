"""Search's ready orders and kept summaries (``ocireg.ext.search.facts``): a list of every
repository (GlobalSearch with no text, RepoListWithNewestImage) is taken from orders built once
per meta DB state, and image summaries are kept until the next write. Here the answers are
checked against a sort of the repositories' own figures, and each kind of write is checked to
show in the next answer."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ocireg.ext.search.execution import Executor, SearchSchema
from ocireg.ext.search.facts import FactsCache
from ocireg.ext.search.schema import Search, build_schema
from ocireg.ext.search.settings import SearchLimits
from ocireg.ext.trust.store import LayerVerdict, TrustTables
from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.records import ImageRecord, Platform
from tests.oci import OCI_MANIFEST

LISTING = """query ($filter: Filter, $page: PageInput) {
  GlobalSearch(query: "", filter: $filter, requestedPage: $page) {
    Page { TotalCount ItemCount } Repos { Name Rank }
  }
}"""
BOOKMARKED = ("team0/app00", "team1/app01")  # by user0: one the caller may not read
SORTS = ("RELEVANCE", "UPDATE_TIME", "ALPHABETIC_ASC", "ALPHABETIC_DSC", "DOWNLOADS", "STARS")


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _registry() -> tuple[SQLiteMetaDB, dict[str, dict[str, Any]]]:
    """30 tagged repositories whose times, downloads and stars tie in places, some on arm64,
    some signed, and two untagged ones; with each tagged one's figures, as the test knows them."""
    db = SQLiteMetaDB(":memory:")
    known: dict[str, dict[str, Any]] = {}
    for n in range(30):
        repo = f"team{n % 4}/app{n:02d}"
        arch = "arm64" if n % 3 == 0 else "amd64"
        image = ImageRecord(_digest(n + 1), OCI_MANIFEST, 1, platforms=[Platform("linux", arch)])
        db.put_image(repo, image, ["v1"], when=float(n % 7), who="")
        downloads = n % 5
        if downloads:
            db.add_pulls({(repo, image.digest): (downloads, 1.0)})
        stars = n % 3
        for user in range(stars):
            db.toggle(f"user{user}", repo, "starred")
        signed = n % 4 == 1
        if signed:
            signature = ImageRecord(_digest(1000 + n), OCI_MANIFEST, 1, subject=image.digest,
                                    signature="cosign")  # fmt: skip
            db.put_image(repo, signature, [], when=float(n % 7), who="")
        known[repo] = {"updated": n % 7, "downloads": downloads, "stars": stars,
                       "arch": arch, "signed": signed}  # fmt: skip
    db.put_image("untagged/one", ImageRecord(_digest(500), OCI_MANIFEST, 1), [], 1.0, "")
    for bookmarked in BOOKMARKED:
        db.toggle("user0", bookmarked, "bookmarked")
    return db, known


def _expected(known: dict[str, dict[str, Any]], sort: str, names: list[str]) -> list[str]:
    """zot's orders as search sorts them: a figure descending, ties by name descending."""
    figure = {"UPDATE_TIME": "updated", "DOWNLOADS": "downloads", "STARS": "stars"}.get(sort)
    if figure is not None:
        return sorted(names, key=lambda n: (known[n][figure], n), reverse=True)
    return sorted(names, reverse=sort == "ALPHABETIC_DSC")


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(build_schema(SearchSchema), SearchLimits())


def _answer(executor: Executor, search: Search, query: str, **variables: Any) -> Any:
    body = json.loads(executor.answer(query, variables, None, search))
    assert "errors" not in body, body
    return body["data"]


def test_every_order_filter_and_page_is_a_sort_of_the_repositories(executor: Executor) -> None:
    db, known = _registry()
    facts = FactsCache(db)
    filters: list[tuple[dict[str, Any] | None, Any]] = [
        (None, lambda figures, name: True),
        ({"Arch": ["arm64"]}, lambda figures, name: figures["arch"] == "arm64"),
        ({"Os": ["linux"], "Arch": ["amd64", "s390x"]}, lambda f, name: f["arch"] == "amd64"),
        ({"Os": ["windows"]}, lambda figures, name: False),
        ({"HasToBeSigned": True}, lambda figures, name: figures["signed"]),
        ({"IsBookmarked": True}, lambda figures, name: name in BOOKMARKED),
        ({"IsBookmarked": False}, lambda figures, name: name not in BOOKMARKED),
        # user0 starred every repository that has a star: not starred, those without one
        ({"IsStarred": False}, lambda figures, name: figures["stars"] == 0),
    ]
    readable = sorted(known)[3:]  # the caller may not read the first three
    for wanted, keeps in filters:
        names = [name for name in readable if keeps(known[name], name)]
        for sort in SORTS:
            order = _expected(known, sort, names)
            for limit, offset in ((5, 0), (5, 5), (7, 20), (0, 0), (50, 0)):
                search = Search(db, facts, "user0", lambda all_: [n for n in all_ if n in readable])
                page = {"limit": limit, "offset": offset, "sortBy": sort}
                found = _answer(executor, search, LISTING, filter=wanted, page=page)
                result = found["GlobalSearch"]
                end = offset + limit if limit else None
                assert [r["Name"] for r in result["Repos"]] == order[offset:end], (wanted, sort)
                assert result["Page"]["TotalCount"] == len(names)
                assert all(r["Rank"] == 0 for r in result["Repos"])


def test_the_newest_list_is_by_update_time_and_refuses_what_it_cannot_sort(
    executor: Executor,
) -> None:
    db, known = _registry()
    search = Search(db, FactsCache(db))
    query = "query ($page: PageInput) { RepoListWithNewestImage(requestedPage: $page) " \
            "{ Page { TotalCount } Results { Name } } }"  # fmt: skip
    found = _answer(executor, search, query, page={"limit": 4})["RepoListWithNewestImage"]
    assert [r["Name"] for r in found["Results"]] == _expected(known, "UPDATE_TIME", [*known])[:4]
    assert found["Page"]["TotalCount"] == len(known)
    refused = json.loads(executor.answer(query, {"page": {"sortBy": "SEVERITY"}}, None, search))
    assert "sorting by SEVERITY is not supported" in refused["errors"][0]["message"]


def test_kept_summaries_and_orders_show_every_later_write(executor: Executor) -> None:
    db, _ = _registry()
    facts = FactsCache(db)
    repo, first = "team1/app01", _digest(2)  # signed (cosign signature _digest(1001))
    info = """query ($repo: String!) { ExpandedRepoInfo(repo: $repo) {
      Images { Tag DownloadCount SignatureInfo { IsTrusted Author } }
      Summary { StarCount DownloadCount } } }"""

    def look() -> Any:
        return _answer(executor, Search(db, facts, "user0"), info, repo=repo)["ExpandedRepoInfo"]

    def top(sort: str) -> str:
        page = {"limit": 1, "sortBy": sort}
        found = _answer(executor, Search(db, facts), LISTING, page=page)["GlobalSearch"]
        return str(found["Repos"][0]["Name"])

    before = look()
    assert look() == before  # kept, and answered alike
    assert [i["Tag"] for i in before["Images"]] == ["v1"]
    db.put_image(repo, ImageRecord(_digest(900), OCI_MANIFEST, 1), ["v2"], when=99.0, who="")
    assert sorted(i["Tag"] for i in look()["Images"]) == ["v1", "v2"]
    assert top("UPDATE_TIME") == repo
    db.add_pulls({(repo, first): (1000, 5.0)})
    assert look()["Summary"]["DownloadCount"] == before["Summary"]["DownloadCount"] + 1000
    assert top("DOWNLOADS") == repo
    for user in range(5):
        db.toggle(f"fan{user}", repo, "starred")
    assert look()["Summary"]["StarCount"] == before["Summary"]["StarCount"] + 5
    assert top("STARS") == repo
    # another extension's table (trust's verdicts): no repository's version moves
    (untrusted,) = next(i for i in look()["Images"] if i["Tag"] == "v1")["SignatureInfo"]
    assert untrusted == {"IsTrusted": False, "Author": ""}
    verdict = LayerVerdict(repo, _digest(1001), 0, first, "cosign", True, "CN=alice", "", None)
    TrustTables(db).put_verdicts(repo, _digest(1001), [verdict])
    (trusted,) = next(i for i in look()["Images"] if i["Tag"] == "v1")["SignatureInfo"]
    assert trusted == {"IsTrusted": True, "Author": "CN=alice"}
    # a verdict that lapses: kept summaries hold only until then, with nothing written
    lapses = time.time() + 1.0
    verdict = LayerVerdict(repo, _digest(1001), 0, first, "cosign", True, "CN=bob", "", lapses)
    TrustTables(db).put_verdicts(repo, _digest(1001), [verdict])
    (trusted,) = next(i for i in look()["Images"] if i["Tag"] == "v1")["SignatureInfo"]
    assert trusted == {"IsTrusted": True, "Author": "CN=bob"}
    time.sleep(max(0.0, lapses - time.time()) + 0.1)
    (lapsed,) = next(i for i in look()["Images"] if i["Tag"] == "v1")["SignatureInfo"]
    assert lapsed == {"IsTrusted": False, "Author": ""}
