"""The UI's setup and its ASGI app: who the visitor is, the gate for registries that admit no
anonymous reader, the pages' headers, and the static files.

Everything under ``/home`` comes here (a prefix route); authentication has already run, so a
visitor who sends Basic credentials is that user, and one without is whoever their session
cookie names (:mod:`.sessions`), else anonymous. The pages call search and the meta DB as that
identity, through the one rule for what a caller may read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from ocireg.auth.identity import ANONYMOUS, Identity, identity_of
from ocireg.auth.identity import SCOPE_KEY as IDENTITY_KEY
from ocireg.auth.sessionkeys import read_session_keys, warn_unused_session_keys
from ocireg.extensions.runtime import SetupContext
from ocireg.state import SCOPE_KEY as STATE_KEY
from ocireg.state import AppState

from . import present
from .queries import Runner
from .runs import RunLog
from .sessions import COOKIE, Session, SessionStore

log = logging.getLogger("ocireg.ui")

BASE = "/home"
# Nothing is fetched from elsewhere, nothing inline runs: the pages work under the strictest
# policy that still lets them be what they are.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
OPEN_PATHS = (f"{BASE}/login", f"{BASE}/static/")  # reachable before logging in


@dataclass
class UI:
    state: AppState
    runner: Runner
    sessions: SessionStore
    templates: jinja2.Environment
    secure_cookies: bool
    static: dict[str, tuple[bytes, str]]
    runs: RunLog  # the last GC, scrub and sync rounds, for the operations page

    @property
    def preferences(self) -> bool:
        """Stars and bookmarks (the userprefs extension) are on."""
        return "userprefs" in self.state.extensions

    @property
    def api_keys(self) -> bool:
        guard = self.state.guard
        return guard is not None and guard.api_keys is not None

    def openid_providers(self) -> list[tuple[str, str]]:
        """Each OpenID provider's zot name and the name its button shows."""
        guard = self.state.guard
        if guard is None:
            return []
        return [(name, p.display_name) for name, p in sorted(guard.openid.items())]

    def login_methods(self) -> list[str]:
        guard = self.state.guard
        if guard is None:
            return []
        return [m.name for m in guard.passwords if m.name != "apikey"]


@dataclass(frozen=True)
class Visit:
    """One page request: the request, who makes it, and their session if any."""

    request: Request
    who: Identity
    session: Session | None

    @property
    def user(self) -> str | None:
        return self.who.user


def setup(context: SetupContext) -> UI:
    config = context.config
    auth = config.http.auth
    secure = config.http.tls is not None
    if auth is not None and auth.secureSession is not None:
        secure = auth.secureSession
    guard = context.app.guard
    if guard is not None and guard.sessions is not None:
        sessions = guard.sessions  # OpenID login's (its keys already read): one store for both
    else:
        keys = None
        if auth is not None and auth.sessionKeysFile is not None:
            keys = read_session_keys(auth.sessionKeysFile)
            warn_unused_session_keys(keys)
        sessions = SessionStore.of(context.app.meta, keys)
        context.scheduler.at_stop(_closer(sessions))
        if guard is not None:  # API calls marked as the UI's are then this session's user
            guard.sessions = sessions
    ui = UI(
        state=context.app,
        runner=context.app.extensions["search"].state.runner,
        sessions=sessions,
        templates=_templates(),
        secure_cookies=secure,
        static=_static_files(),
        runs=RunLog(context.app.meta),
    )
    context.scheduler.round_listeners.append(ui.runs.round_done)
    context.add_route(BASE, UIApp(ui), access="anyone", prefix=True)
    return ui


def _closer(sessions: SessionStore) -> Any:
    async def close() -> None:
        sessions.close()

    return close


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ocireg.ext.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        size=present.size,
        when=present.when,
        short=present.short_digest,
        stamp=present.stamp,
        ago=present.ago,
        duration=present.duration,
    )
    environment.globals.update(base=BASE, platforms=present.platforms)
    return environment


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("ocireg.ext.ui") / "static"
    found = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _STATIC_TYPES:
            found[item.name] = (item.read_bytes(), _STATIC_TYPES[suffix])
    return found


class UIApp:
    def __init__(self, ui: UI) -> None:
        from .pages import routes

        self.ui = ui
        self.router = Router(routes=[Route(p, e, methods=m) for p, e, m in routes(ui)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[STATE_KEY] = self.ui.state  # what handlers' helpers (readable) look for
        who, session = await self._visitor(scope)
        scope[IDENTITY_KEY] = who
        scope["ocireg.ui.session"] = session
        if who.anonymous and self._closed_to_guests() and not _open(scope["path"]):
            query = scope["query_string"].decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            await login_redirect(target)(scope, receive, send)
            return
        await self.router(scope, receive, _with_headers(send))

    async def _visitor(self, scope: Scope) -> tuple[Identity, Session | None]:
        who = identity_of(scope)
        if not who.anonymous:  # credentials on the request itself (a script, curl)
            return who, None
        session = await self.ui.sessions.find(Request(scope).cookies.get(COOKIE))
        if session is None:
            return ANONYMOUS, None
        return Identity(session.user, session.method, frozenset(session.groups)), session

    def _closed_to_guests(self) -> bool:
        guard = self.ui.state.guard
        return guard is not None and not guard.access.admits_anonymous()


def _open(path: str) -> bool:
    return path == OPEN_PATHS[0] or path.startswith(OPEN_PATHS[1])


def login_redirect(target: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"{BASE}/login?next={quote(target, safe='')}", status_code=303)


def _with_headers(send: Send) -> Send:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present_names = {name.lower() for name, _ in headers}
            for name, value in SECURITY_HEADERS.items():
                if name.lower().encode() not in present_names:
                    headers.append((name.lower().encode(), value.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return sending
