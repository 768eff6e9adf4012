"""The image page and its tabs: the overview (platforms, layers, referrers, manifest, config),
its vulnerabilities (when CVE scanning is on) and its base images and dependents.

Each tab asks search only what it shows, so the overview costs no CVE or layer-prefix work.
A repository the visitor may not read is answered as a missing image on every tab, and the
related lists come from search, which only ever looks at what the visitor may read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.names import name_problem

from . import present
from .app import BASE
from .pages import Pages
from .queries import CVE_PAGE, IMAGE, RELATED, VULNERABILITY_COUNTS, SearchFailed

MAX_JSON = 1 << 20  # bytes of a config shown on a page
CVE_PAGE_SIZE = 50
RELATED_LIMIT = 100  # of each list; the tab says how many more there are
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
_IMAGE_PATH = re.compile(r"/image/(?P<repo>.+)/(?P<kind>tag|digest)/(?P<ref>[^/]+)")


class BadInput(Exception):
    """A query parameter the tab cannot use: answered 400 with the reason."""


@dataclass(frozen=True)
class Wanted:
    """The image a page names."""

    repo: str
    kind: str  # "tag" or "digest"
    ref: str

    @property
    def label(self) -> str:
        return f"{self.repo}:{self.ref}" if self.kind == "tag" else f"{self.repo}@{self.ref}"

    @property
    def path(self) -> str:
        return f"{BASE}/image/{self.repo}/{self.kind}/{self.ref}"


class ImagePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ui = pages.ui

    @property
    def scanning(self) -> bool:
        """CVE scanning is on (``extensions.search.cve``): the vulnerabilities tab exists."""
        search = self.ui.state.extensions.get("search")
        settings = search.enabled.settings if search is not None else None
        return getattr(settings, "cve", None) is not None

    def tabs(self, wanted: Wanted) -> list[tuple[str, str, str]]:
        """(key, label, link) of each tab this registry has."""
        found = [("overview", "Overview", wanted.path)]
        if self.scanning:
            found.append(
                ("vulnerabilities", "Vulnerabilities", f"{wanted.path}?tab=vulnerabilities")
            )
        found.append(("related", "Base images and dependents", f"{wanted.path}?tab=related"))
        return found

    async def image(self, request: Request) -> Response:
        pages, visit = self.pages, self.pages.visit(request)
        matched = _IMAGE_PATH.fullmatch(request.url.path[len(BASE) :])
        if matched is None:
            return pages.problem(visit, 404, "Not found", "There is no such page.")
        wanted = Wanted(matched["repo"], matched["kind"], matched["ref"])
        missing = pages.problem(
            visit, 404, "Image not found", f"There is no image {wanted.label} that you may read."
        )
        if name_problem(wanted.repo) is not None or not pages.may_read(visit, wanted.repo):
            return missing
        tab = request.query_params.get("tab", "overview")
        tabs = self.tabs(wanted)
        if tab not in {key for key, _, _ in tabs}:
            return pages.problem(visit, 404, "Not found", f"This image has no {tab} tab.")
        handler = {"overview": self.overview, "vulnerabilities": self.vulnerabilities}
        try:
            values = await handler.get(tab, self.related)(request, wanted)
        except SearchFailed:
            return missing
        except BadInput as exc:
            return pages.problem(visit, 400, "Bad request", str(exc))
        return pages.render(
            visit,
            f"image_{tab}.html",
            repo=wanted.repo,
            label=wanted.label,
            tabs=tabs,
            tab=tab,
            artifact=present.is_artifact(values["image"].get("ArtifactType")),
            **values,
        )

    # -- the tabs: each returns its template's values -------------------------------------
    async def overview(self, request: Request, wanted: Wanted) -> dict[str, Any]:
        visit = self.pages.visit(request)
        image = (await self.pages.search(visit, IMAGE, image=wanted.label))["Image"]
        manifests = image["Manifests"] or []
        try:
            chosen = int(request.query_params.get("platform", "0"))
        except ValueError:
            chosen = -1
        if not 0 <= chosen < max(len(manifests), 1):
            raise BadInput("platform must be one of the image's")
        selected = manifests[chosen] if manifests else None
        layers = (selected or {}).get("History") or []
        artifact = present.is_artifact(image.get("ArtifactType"))
        sizes = [entry["Layer"] for entry in layers if entry["Layer"]]
        host = present.public_host(request)
        registry = self.ui.state.registries.of(wanted.repo)  # (on S3, in a worker thread)
        manifest_json = await registry.off_loop(
            self._manifest_json, wanted.repo, image["Digest"] or wanted.ref
        )
        config_json = await registry.off_loop(
            self._blob_json, wanted.repo, (selected or {}).get("ConfigDigest")
        )
        return {
            "image": image,
            "manifests": manifests,
            "chosen": chosen,
            "selected": selected,
            "layers": layers,
            "bar": present.layer_bar(sizes),
            "manifest_json": manifest_json,
            "config_json": config_json,
            "pulls": present.pull_commands(host, wanted.repo, image["Tag"] or wanted.ref, artifact),
        }

    async def vulnerabilities(self, request: Request, wanted: Wanted) -> dict[str, Any]:
        visit = self.pages.visit(request)
        choice = _cve_choice(request)
        found = await self.pages.search(visit, VULNERABILITY_COUNTS, image=wanted.label)
        image = found["Image"]
        counts = image.get("Vulnerabilities") or {}
        scanned = bool(counts.get("MaxSeverity"))  # "" (or no answer): never scanned
        cves: list[dict[str, Any]] = []
        total = 0
        if scanned:
            page = {"limit": CVE_PAGE_SIZE, "offset": (choice["page"] - 1) * CVE_PAGE_SIZE}
            listed = await self.pages.search(
                visit,
                CVE_PAGE,
                image=wanted.label,
                page=page,
                text=choice["q"],
                severity=choice["severity"],
            )
            result = listed["CVEListForImage"]
            cves, total = result["CVEList"] or [], result["Page"]["TotalCount"]
        pages = max(1, -(-total // CVE_PAGE_SIZE))
        return {
            "image": image,
            "scanned": scanned,
            "counts": counts,
            "chart": present.severity_chart(counts),
            "cves": cves,
            "total": total,
            "choice": choice,
            "severities": SEVERITIES,
            "links": _cve_links(wanted, choice, pages),
        }

    async def related(self, request: Request, wanted: Wanted) -> dict[str, Any]:
        visit = self.pages.visit(request)
        image = None
        tag = wanted.ref if wanted.kind == "tag" else None
        if tag is None:  # search relates images by tag, as zot does
            image = (await self.pages.search(visit, IMAGE, image=wanted.label))["Image"]
            tag = image.get("Tag")
        if not tag:
            return {"image": image, "bases": None, "dependents": None}
        found = await self.pages.search(
            visit, RELATED, image=f"{wanted.repo}:{tag}", page={"limit": RELATED_LIMIT}
        )
        return {
            "image": found["Image"],
            "bases": found["BaseImageList"],
            "dependents": found["DerivedImageList"],
        }

    def _manifest_json(self, repo: str, reference: str) -> str | None:
        registry = self.ui.state.registries.of(repo)
        try:
            stored = registry.resolve(repo, reference)
            return present.pretty_json(registry.manifest_bytes(repo, stored))
        except (RegistryError, ValueError):
            return None

    def _blob_json(self, repo: str, digest: str | None) -> str | None:
        if not digest:
            return None
        try:
            parsed = parse_digest(digest)
        except (RegistryError, ValueError):
            return None
        data = self.ui.state.registries.of(repo).blob_bytes(repo, parsed, MAX_JSON)
        return present.pretty_json(data)


def _cve_choice(request: Request) -> dict[str, Any]:
    params = request.query_params
    text = params.get("q", "").strip()
    if len(text) > 128:
        raise BadInput("the text filter is longer than 128 characters")
    severity = params.get("severity", "")
    if severity and severity not in SEVERITIES:
        raise BadInput(f"severity must be one of {', '.join(SEVERITIES)}")
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        raise BadInput("page must be a number") from None
    if not 1 <= number <= 10_000:
        raise BadInput("page must be between 1 and 10000")
    return {"q": text, "severity": severity, "page": number}


def _cve_links(wanted: Wanted, choice: dict[str, Any], pages: int) -> dict[str, str | None]:
    from urllib.parse import urlencode

    def link(number: int) -> str:
        params = {"tab": "vulnerabilities", "q": choice["q"], "severity": choice["severity"]}
        kept = {key: value for key, value in params.items() if value}
        return f"{wanted.path}?{urlencode({**kept, 'page': number})}"

    current = choice["page"]
    return {
        "previous": link(current - 1) if current > 1 else None,
        "next": link(current + 1) if current < pages else None,
    }
