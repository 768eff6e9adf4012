"""What the pages ask search (zot's GraphQL, the same executor and access rule as
``/v2/_zot/ext/search``), and the answers as plain dictionaries."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ocireg.auth.identity import Identity

REPO_FIELDS = """
  Name LastUpdated Size DownloadCount StarCount IsBookmarked IsStarred
  Platforms { Os Arch } Vendors
  NewestImage { Tag Description Title IsSigned Licenses Source Vendor }
"""

GLOBAL_SEARCH = f"""
query ($q: String!, $filter: Filter, $page: PageInput) {{
  GlobalSearch(query: $q, filter: $filter, requestedPage: $page) {{
    Page {{ TotalCount ItemCount }}
    Repos {{ {REPO_FIELDS} }}
    Images {{ RepoName Tag Digest }}
  }}
}}"""

# the home page in one query: one trip to the search process instead of four
HOME = f"""
query ($page: PageInput, $recent: PageInput, $popular: PageInput, $mine: Boolean!) {{
  recent: GlobalSearch(query: "", requestedPage: $recent) {{ Repos {{ {REPO_FIELDS} }} }}
  popular: GlobalSearch(query: "", requestedPage: $popular) {{ Repos {{ {REPO_FIELDS} }} }}
  StarredRepos(requestedPage: $page) @include(if: $mine) {{ Results {{ {REPO_FIELDS} }} }}
  BookmarkedRepos(requestedPage: $page) @include(if: $mine) {{ Results {{ {REPO_FIELDS} }} }}
}}"""

IMAGE_FIELDS = """
  RepoName Tag Digest MediaType Size PushedBy LastUpdated IsSigned ArtifactType
  Description Title Licenses Source Vendor Documentation Authors DownloadCount
  SignatureInfo { Tool IsTrusted Author }
"""

REPO = f"""
query ($repo: String!) {{
  ExpandedRepoInfo(repo: $repo) {{
    Summary {{ {REPO_FIELDS} }}
    Images {{ {IMAGE_FIELDS} Manifests {{ Platform {{ Os Arch }} }} }}
  }}
}}"""

IMAGE = f"""
query ($image: String!) {{
  Image(image: $image) {{
    {IMAGE_FIELDS}
    Manifests {{
      Digest ConfigDigest Size ArtifactType LastUpdated
      Platform {{ Os Arch }}
      Layers {{ Size Digest }}
      History {{ Layer {{ Size Digest }} HistoryDescription {{ Created CreatedBy EmptyLayer }} }}
    }}
    Referrers {{ MediaType ArtifactType Size Digest Annotations {{ Key Value }} }}
  }}
}}"""


class Runner(Protocol):
    async def answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, who: Identity
    ) -> bytes: ...


class SearchFailed(Exception):
    """Search answered errors only (an unknown image, a limit, a failure)."""


async def ask(runner: Runner, who: Identity, query: str, **variables: Any) -> dict[str, Any]:
    """The ``data`` of the answer; SearchFailed when there is none."""
    answer = json.loads(await runner.answer(query, variables, None, who))
    data = answer.get("data")
    if not data:
        messages = [e.get("message", "") for e in answer.get("errors") or []]
        raise SearchFailed("; ".join(messages) or "no answer")
    result: dict[str, Any] = data
    return result
