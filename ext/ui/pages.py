"""The pages: each handler asks search (as the visitor) and renders one template.

A repository the visitor may not read is answered exactly as one that does not exist, on every
page, so that the UI tells an intruder nothing the API would not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ocireg.auth.identity import identity_of
from ocireg.names import name_problem
from ocireg.operations import handling

from . import accounts, present
from .app import BASE, UI, Visit
from .forms import FormRefused, read_form
from .queries import GLOBAL_SEARCH, HOME, REPO, SearchFailed, ask

PAGE_SIZE = 20
HOME_ROWS = 6
SORTS = {
    "relevance": ("RELEVANCE", "Relevance"),
    "updated": ("UPDATE_TIME", "Recently updated"),
    "downloads": ("DOWNLOADS", "Most downloaded"),
    "stars": ("STARS", "Most starred"),
    "name": ("ALPHABETIC_ASC", "Name A to Z"),
    "name-desc": ("ALPHABETIC_DSC", "Name Z to A"),
}
OS_CHOICES = ("linux", "windows", "freebsd", "darwin")
# zui's architecture filter
ARCH_CHOICES = (
    "amd64",
    "arm64",
    "arm",
    "386",
    "ppc64le",
    "s390x",
    "riscv64",
    "loong64",
    "mips64le",
)

Handler = Callable[[Request], Awaitable[Response]]


class BadInput(Exception):
    """A query parameter no page can use: answered 400 with the reason."""


class Pages:
    def __init__(self, ui: UI) -> None:
        self.ui = ui

    # -- helpers --------------------------------------------------------------------------
    def visit(self, request: Request) -> Visit:
        return Visit(request, identity_of(request.scope), request.scope.get("ocireg.ui.session"))

    def render(self, visit: Visit, template: str, status: int = 200, **values: Any) -> Response:
        page = self.ui.templates.get_template(template).render(
            visit=visit,
            user=visit.user,
            csrf=visit.session.csrf if visit.session else "",
            logged_in_by_session=visit.session is not None,
            login_methods=self.ui.login_methods(),
            openid_providers=self.ui.openid_providers(),
            api_keys=self.ui.api_keys and visit.user is not None,
            preferences=self.ui.preferences and visit.user is not None,
            administrator=self.may_administer(visit),
            query=values.pop("query", ""),
            **values,
        )
        return HTMLResponse(page, status, headers={"Cache-Control": "no-store"})

    def problem(self, visit: Visit, status: int, title: str, detail: str) -> Response:
        return self.render(visit, "problem.html", status, title=title, detail=detail)

    async def form(self, visit: Visit) -> FormData | Response:
        """The visitor's form, or the page that refuses it."""
        try:
            return await read_form(visit.request)
        except FormRefused as exc:
            return self.problem(visit, exc.status, "Form refused", exc.reason)

    async def search(self, visit: Visit, query: str, **variables: Any) -> dict[str, Any]:
        with handling(visit.request):  # search's thread runner reads the caller from it
            return await ask(self.ui.runner, visit.who, query, **variables)

    def may_administer(self, visit: Visit) -> bool:
        """adminPolicy's users and groups; everyone where nothing is access-controlled."""
        guard = self.ui.state.guard
        return guard is None or guard.access.may_administer(visit.who)

    def may_read(self, visit: Visit, repo: str) -> bool:
        guard = self.ui.state.guard
        return guard is None or guard.access.allows(visit.who, "read", repo)

    # -- pages ----------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        visit = self.visit(request)
        mine = visit.user is not None and self.ui.preferences
        found = await self.search(
            visit,
            HOME,
            page={"limit": HOME_ROWS},
            recent={"limit": HOME_ROWS, "sortBy": "UPDATE_TIME"},
            popular={"limit": HOME_ROWS, "sortBy": "DOWNLOADS"},
            mine=mine,
        )
        return self.render(
            visit,
            "home.html",
            recent=found["recent"]["Repos"] or [],
            popular=found["popular"]["Repos"] or [],
            starred=found["StarredRepos"]["Results"] if mine else [],
            bookmarked=found["BookmarkedRepos"]["Results"] if mine else [],
        )

    async def explore(self, request: Request) -> Response:
        visit = self.visit(request)
        try:
            choice = _explore_choice(request, visit.user is not None and self.ui.preferences)
        except BadInput as exc:
            return self.problem(visit, 400, "Bad request", str(exc))
        page = {
            "limit": PAGE_SIZE,
            "offset": (choice["page"] - 1) * PAGE_SIZE,
            "sortBy": SORTS[choice["sort"]][0],
        }
        try:
            found = await self.search(
                visit, GLOBAL_SEARCH, q=choice["q"], filter=choice["filter"], page=page
            )
        except SearchFailed as exc:
            return self.problem(visit, 400, "Search refused", str(exc))
        result = found["GlobalSearch"]
        total = result["Page"]["TotalCount"] if result["Page"] else 0
        pages = max(1, -(-total // PAGE_SIZE))
        return self.render(
            visit,
            "explore.html",
            query=choice["q"],
            choice=choice,
            repos=result["Repos"] or [],
            images=result["Images"] or [],
            total=total,
            pages=pages,
            sorts=SORTS,
            os_choices=OS_CHOICES,
            arch_choices=ARCH_CHOICES,
            links=_page_links(request, choice["page"], pages),
        )

    async def suggest(self, request: Request) -> Response:
        """Suggestions as one types in the search box (the small script asks)."""
        visit = self.visit(request)
        text = request.query_params.get("q", "").strip()[:200]
        if not text:
            return JSONResponse([])
        try:
            found = await self.search(visit, GLOBAL_SEARCH, q=text, page={"limit": 8})
        except SearchFailed:
            return JSONResponse([])
        result = found["GlobalSearch"]
        items = [_suggestion(r["Name"], f"/repo/{r['Name']}") for r in result["Repos"] or []]
        items += [
            _suggestion(f"{i['RepoName']}:{i['Tag']}", f"/image/{i['RepoName']}/tag/{i['Tag']}")
            for i in result["Images"] or []
        ]
        return JSONResponse(items[:8], headers={"Cache-Control": "no-store"})

    async def repository(self, request: Request) -> Response:
        visit = self.visit(request)
        name = request.path_params["name"]
        missing = self.problem(
            visit, 404, "Repository not found", f"There is no repository {name} that you may read."
        )
        if name_problem(name) is not None or not self.may_read(visit, name):
            return missing
        found = await self.search(visit, REPO, repo=name)
        info = found["ExpandedRepoInfo"]
        if not info or not info["Summary"]:
            return missing
        images = info["Images"] or []
        newest = images[0] if images else None
        host = present.public_host(request)
        pulls = []
        if newest:
            artifact = present.is_artifact(newest.get("ArtifactType"))
            pulls = present.pull_commands(host, name, newest["Tag"], artifact)
        return self.render(
            visit,
            "repository.html",
            repo=info["Summary"],
            images=images,
            newest=newest,
            pulls=pulls,
            name=name,
        )

    async def preference(self, request: Request) -> Response:
        """Star or bookmark a repository (a form; the userprefs extension's toggle)."""
        visit = self.visit(request)
        form = await self.form(visit)
        if isinstance(form, Response):
            return form
        refused = accounts.check_csrf(self, visit, form)
        if refused is not None:
            return refused
        name, action = str(form.get("repo", "")), str(form.get("action", ""))
        preference = {"star": "starred", "bookmark": "bookmarked"}.get(action)
        if visit.user is None or not self.ui.preferences:
            return self.problem(visit, 403, "Not allowed", "Log in to star and bookmark.")
        if preference is None:
            return self.problem(visit, 400, "Bad request", "action must be star or bookmark")
        if name_problem(name) is not None or not self.may_read(visit, name):
            return self.problem(
                visit,
                404,
                "Repository not found",
                f"There is no repository {name} that you may read.",
            )
        registry = self.ui.state.registries.of(name)
        if await registry.off_loop(registry.index, name) is None:
            return self.problem(
                visit,
                404,
                "Repository not found",
                f"There is no repository {name} that you may read.",
            )
        meta = self.ui.state.meta
        await meta.asked(meta.toggle, visit.user, name, preference)
        return RedirectResponse(f"{BASE}/repo/{name}", status_code=303)

    async def static(self, request: Request) -> Response:
        found = self.ui.static.get(request.path_params["file"])
        if found is None:
            return Response("not found", 404, media_type="text/plain")
        content, media_type = found
        return Response(
            content, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
        )

    async def root(self, request: Request) -> Response:
        return await self.home(request)

    async def not_found(self, request: Request) -> Response:
        return self.problem(self.visit(request), 404, "Not found", "There is no such page.")


def _suggestion(label: str, path: str) -> dict[str, str]:
    return {"label": label, "url": BASE + path}


def _explore_choice(request: Request, personal: bool) -> dict[str, Any]:
    params = request.query_params
    sort = params.get("sort", "relevance")
    if sort not in SORTS:
        raise BadInput(f"sort must be one of {', '.join(SORTS)}")
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        raise BadInput("page must be a number") from None
    if number < 1 or number > 100_000:
        raise BadInput("page must be between 1 and 100000")
    systems = [v for v in params.getlist("os") if v]
    arches = [v for v in params.getlist("arch") if v]
    for value in (*systems, *arches):
        if len(value) > 64:
            raise BadInput("a filter value is longer than 64 characters")
    wanted: dict[str, Any] = {}
    if systems:
        wanted["Os"] = systems
    if arches:
        wanted["Arch"] = arches
    signed = params.get("signed") == "1"
    if signed:
        wanted["HasToBeSigned"] = True
    starred = personal and params.get("starred") == "1"
    bookmarked = personal and params.get("bookmarked") == "1"
    if starred:
        wanted["IsStarred"] = True
    if bookmarked:
        wanted["IsBookmarked"] = True
    return {
        "q": params.get("q", "").strip()[:200],
        "sort": sort,
        "page": number,
        "os": systems,
        "arch": arches,
        "signed": signed,
        "starred": starred,
        "bookmarked": bookmarked,
        "filter": wanted or None,
    }


def _page_links(request: Request, current: int, pages: int) -> dict[str, str | None]:
    def link(number: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        params.append(("page", str(number)))
        from urllib.parse import urlencode

        return f"{BASE}/explore?{urlencode(params)}"

    return {
        "previous": link(current - 1) if current > 1 else None,
        "next": link(current + 1) if current < pages else None,
    }


def _answering(pages: Pages, handler: Handler) -> Handler:
    """``handler``, with search's refusals (a limit, its timeout, a failure) answered as a
    503 page that says why, never a 500."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except SearchFailed as exc:
            visit = pages.visit(request)
            return pages.problem(visit, 503, "Search did not answer", str(exc))

    return answer


def routes(ui: UI) -> list[tuple[str, Handler, list[str]]]:
    from .imagepage import ImagePages
    from .operations import Operations

    pages = Pages(ui)
    people = accounts.Accounts(pages)
    images = ImagePages(pages)
    operations = Operations(pages, ui.runs)
    return [
        (path, _answering(pages, handler), methods)
        for path, handler, methods in [
            (BASE, pages.home, ["GET", "HEAD"]),
            (f"{BASE}/", pages.root, ["GET", "HEAD"]),
            (f"{BASE}/explore", pages.explore, ["GET", "HEAD"]),
            (f"{BASE}/suggest", pages.suggest, ["GET"]),
            (f"{BASE}/repo/{{name:path}}", pages.repository, ["GET", "HEAD"]),
            (f"{BASE}/image/{{rest:path}}", images.image, ["GET", "HEAD"]),
            (f"{BASE}/prefs", pages.preference, ["POST"]),
            (f"{BASE}/operations", operations.page, ["GET", "HEAD"]),
            (f"{BASE}/operations/estimate", operations.estimate, ["POST"]),
            (f"{BASE}/static/{{file}}", pages.static, ["GET", "HEAD"]),
            (f"{BASE}/login", people.login_page, ["GET", "HEAD"]),
            (f"{BASE}/login", people.login, ["POST"]),
            (f"{BASE}/logout", people.logout, ["POST"]),
            (f"{BASE}/apikeys", people.keys_page, ["GET", "HEAD"]),
            (f"{BASE}/apikeys", people.create_key, ["POST"]),
            (f"{BASE}/apikeys/revoke", people.revoke_key, ["POST"]),
            (f"{BASE}/{{rest:path}}", pages.not_found, ["GET", "HEAD", "POST"]),
        ]
    ]
