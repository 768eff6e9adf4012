"""The operations page, for administrators (``accessControl.adminPolicy``; everyone when the
registry has no access control, as for every other administrative endpoint): storage per
repository and the biggest images (from the meta DB, kept per repository: :mod:`.storage`),
what GC would free (an estimate made on request, in the background), the last GC, scrub and
sync rounds and their results (:mod:`.runs`), and the background jobs as the scheduler sees
them.

Anyone else gets 403, and the page's link is not shown to them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ocireg.background import roots
from ocireg.registry.gc import GarbageCollector
from ocireg.registry.offloop import run_database_work, run_storage_work
from ocireg.scheduler import Priority, Task

from . import accounts
from .app import BASE, Visit
from .pages import Pages
from .runs import ESTIMATE, RunLog, timed
from .storage import StorageFigures

TOP = 15  # repositories and images listed
KINDS = ("gc", "scrub", "sync")


class Operations:
    def __init__(self, pages: Pages, runs: RunLog) -> None:
        self.pages = pages
        self.ui = pages.ui
        self.runs = runs
        self.estimating = False
        self._figures: StorageFigures | None = None  # made at the first page

    def allowed(self, visit: Visit) -> bool:
        return self.pages.may_administer(visit)

    def refuse(self, visit: Visit) -> Response:
        return self.pages.problem(
            visit, 403, "Not allowed", "The operations page is for the registry's administrators."
        )

    async def page(self, request: Request) -> Response:
        visit = self.pages.visit(request)
        if not self.allowed(visit):
            return self.refuse(visit)
        # the meta DB's figures on its threads: a silent PostgreSQL holds up this page only
        storage, biggest = await run_database_work(True, self._storage)
        runs = await run_database_work(True, self.runs.recent)
        last = {kind: await run_database_work(True, self.runs.last, kind) for kind in KINDS}
        estimate = await run_database_work(True, self.runs.last, ESTIMATE)
        total = sum(row["bytes"] for row in storage)
        top = [dict(row) for row in storage[:TOP]]  # kept rows: this page's own copies
        widest = max((row["bytes"] for row in top), default=0) or 1
        for row in top:
            row["share"] = round(100 * row["bytes"] / widest, 2)
        return self.pages.render(
            visit,
            "operations.html",
            repositories=len(storage),
            total=total,
            storage=top,
            biggest=biggest,
            last=last,
            estimate=estimate,
            estimating=self.estimating,
            runs=[run for run in runs if run.kind != ESTIMATE],
            jobs=sorted(self.ui.state.scheduler.snapshot().jobs.items()),
            configured=self._configured(),
        )

    async def estimate(self, request: Request) -> Response:
        """Start a GC preview of every repository (a form; its result appears on the page)."""
        visit = self.pages.visit(request)
        if not self.allowed(visit):  # authorization before the form is even read
            return self.refuse(visit)
        form = await self.pages.form(visit)
        if isinstance(form, Response):
            return form
        refused = accounts.check_csrf(self.pages, visit, form)
        if refused is not None:
            return refused
        if not self.estimating:
            self.estimating = True
            self.ui.state.scheduler.submit(Task(ESTIMATE, self._estimate, Priority.LOW))
        return RedirectResponse(f"{BASE}/operations", status_code=303)

    async def _estimate(self) -> int:
        started, freed, repositories, failed = time.time(), 0, 0, 0
        state = self.ui.state
        try:
            for root in roots(state.config, state.registries):
                settings = root.settings
                collector = GarbageCollector(
                    root.registry,
                    settings.gcDelay,
                    retention=settings.retention,
                    meta=state.meta,
                    preview=True,
                )
                for repo in await run_storage_work(True, root.registry.repositories):
                    repositories += 1
                    try:
                        collected = await collector.collect(repo)
                    except Exception:  # a repository it cannot read: counted, the rest goes on
                        failed += 1
                        continue
                    freed += sum(removed.size for removed in collected.files)
            run = timed(ESTIMATE, started, repositories, failed, freed)
            await run_database_work(True, self.runs.add, run)
        finally:
            self.estimating = False
        return freed

    def _storage(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._figures is None:
            self._figures = StorageFigures(self.ui.state.meta, TOP)
        return self._figures.current()

    def _configured(self) -> dict[str, bool]:
        """Which of the jobs this registry runs at all (a job never configured has no runs)."""
        state = self.ui.state
        gc = any(root.settings.gc for root in roots(state.config, state.registries))
        return {
            "gc": gc,
            "scrub": "scrub" in state.extensions,
            "sync": "sync" in state.extensions,
        }
