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


# the image's own fields, for the head of each of its tabs
IMAGE_HEAD = f"{IMAGE_FIELDS} Manifests {{ Digest }}"

# the vulnerabilities tab: every count (MaxSeverity "" when never scanned, as zot says it), then,
# for a scanned image, one filtered page of its CVEs (CVEListForImage refuses an unscanned one)
VULNERABILITY_COUNTS = f"""
query ($image: String!) {{
  Image(image: $image) {{
    {IMAGE_HEAD}
    Vulnerabilities {{
      MaxSeverity Count UnknownCount LowCount MediumCount HighCount CriticalCount
    }}
  }}
}}"""

CVE_PAGE = """
query ($image: String!, $page: PageInput, $text: String, $severity: String) {
  CVEListForImage(image: $image, requestedPage: $page, searchedCVE: $text, severity: $severity) {
    Page { TotalCount ItemCount }
    CVEList { Id Title Severity Reference
      PackageList { Name PackagePath InstalledVersion FixedVersion } }
  }
}"""

RELATED_FIELDS = "RepoName Tag Digest Size LastUpdated IsSigned Manifests { Platform { Os Arch } }"

# the base images and dependents tab: zot's BaseImageList and DerivedImageList (an image whose
# layers begin with all of another's is built on it), only of what the visitor may read
RELATED = f"""
query ($image: String!, $page: PageInput) {{
  Image(image: $image) {{ {IMAGE_HEAD} }}
  BaseImageList(image: $image, requestedPage: $page) {{
    Page {{ TotalCount }} Results {{ {RELATED_FIELDS} }}
  }}
  DerivedImageList(image: $image, requestedPage: $page) {{
    Page {{ TotalCount }} Results {{ {RELATED_FIELDS} }}
  }}
}}"""
