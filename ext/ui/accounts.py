"""Logging in and out, CSRF protection, and the API-key page.

Every state-changing form carries a CSRF token: a session's own token once logged in, and
before that (the login form) a random token that must equal the one in a short-lived cookie
(double submit), so a page elsewhere can neither log a visitor out, star on their behalf, make
or revoke their keys, nor log them into an account of its choosing.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ocireg.auth.apikeys import KEY_MAKERS, zot_details
from ocireg.registry.offloop import run_password_check

from .app import BASE, Visit, login_redirect
from .sessions import COOKIE, COOKIE_PATH, LIFETIME

if TYPE_CHECKING:
    from .pages import Pages

LOGIN_CSRF_COOKIE = "ocireg_login_csrf"
MAX_FIELD = 1024  # characters of a user name, password or label
EXPIRY_DAYS = {"never": None, "30": 30, "90": 90, "365": 365}


def check_csrf(pages: Pages, visit: Visit, form: FormData) -> Response | None:
    """The 403 page when the form does not carry this session's token, else None."""
    sent = str(form.get("csrf", ""))
    if visit.session is None or not hmac.compare_digest(sent.encode(), visit.session.csrf.encode()):
        return _refused(pages, visit)
    return None


def _refused(pages: Pages, visit: Visit) -> Response:
    return pages.problem(
        visit,
        403,
        "Form refused",
        "This form did not come from this site, or your session has ended. "
        "Reload the page and try again.",
    )


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: only a page of this UI (no open redirect)."""
    if not target:
        return BASE
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (target == BASE or target.startswith(BASE + "/")):
        return BASE
    return target


class Accounts:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ui = pages.ui

    # -- login ----------------------------------------------------------------------------
    async def login_page(self, request: Request, error: str = "", status: int = 200) -> Response:
        visit = self.pages.visit(request)
        target = _safe_next(request.query_params.get("next"))
        if not error and request.query_params.get("failed") == "openid":  # from the callback
            error = "The OpenID login did not succeed. Try again."
        token = secrets.token_urlsafe(32)
        response = self.pages.render(
            visit, "login.html", status, login_csrf=token, next=target, error=error
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            max_age=3600,
            path=f"{BASE}/login",
            secure=self.ui.secure_cookies,
            httponly=True,
            samesite="strict",
        )
        return response

    async def login(self, request: Request) -> Response:
        visit = self.pages.visit(request)
        form = await self.pages.form(visit)
        if isinstance(form, Response):
            return form
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = str(form.get("csrf", ""))
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return _refused(self.pages, visit)
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        found = None
        if user and password and len(user) <= MAX_FIELD and len(password) <= MAX_FIELD:
            found = await self._check(user, password)
        if found is None:
            guard = self.ui.state.guard
            if guard is not None and guard.fail_delay > 0:  # slow guessing as the API does
                await asyncio.sleep(guard.fail_delay)
            return await self.login_page(request, "Wrong user name or password.", 401)
        method, groups = found
        sessions = self.ui.sessions
        value, _ = await sessions.asked(sessions.create, user, method, groups)
        response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(LIFETIME),
            path=COOKIE_PATH,
            secure=self.ui.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{BASE}/login")
        return response

    async def _check(self, user: str, password: str) -> tuple[str, tuple[str, ...]] | None:
        """The method that accepts the password, and the user's groups; None if none does.
        API keys are for clients, not for logging in here."""
        guard = self.ui.state.guard
        if guard is None:
            return None
        for method in guard.passwords:
            if method.name == "apikey":
                continue
            groups = await run_password_check(method.check, user, password)
            if groups is not None:
                return method.name, tuple(sorted(guard.access.groups_of(user, groups)))
        return None

    async def logout(self, request: Request) -> Response:
        visit = self.pages.visit(request)
        form = await self.pages.form(visit)
        if isinstance(form, Response):
            return form
        refused = check_csrf(self.pages, visit, form)
        if refused is not None:
            return refused
        sessions = self.ui.sessions
        await sessions.asked(sessions.delete, request.cookies.get(COOKIE))
        response = RedirectResponse(BASE, status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    # -- API keys -------------------------------------------------------------------------
    def _key_owner(self, visit: Visit) -> Response | None:
        if not self.ui.api_keys:
            return self.pages.problem(
                visit, 404, "Not found", "API keys are off on this registry (http.auth.apikey)."
            )
        if visit.user is None:
            return login_redirect(f"{BASE}/apikeys")
        return None

    async def keys_page(
        self,
        request: Request,
        created: dict[str, Any] | None = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        visit = self.pages.visit(request)
        refused = self._key_owner(visit)
        if refused is not None:
            return refused
        assert visit.user is not None
        now = time.time()
        meta = self.ui.state.meta
        keys = [zot_details(k, now) for k in await meta.asked(meta.api_keys, visit.user)]
        keys.sort(key=lambda k: str(k["createdAt"]), reverse=True)
        return self.pages.render(
            visit,
            "apikeys.html",
            status,
            keys=keys,
            created=created,
            error=error,
            expiries=EXPIRY_DAYS,
            can_create=visit.who.method in KEY_MAKERS,
        )

    async def create_key(self, request: Request) -> Response:
        visit = self.pages.visit(request)
        form = await self.pages.form(visit)
        if isinstance(form, Response):
            return form
        refused = self._key_owner(visit) or check_csrf(self.pages, visit, form)
        if refused is not None:
            return refused
        assert visit.user is not None
        label = str(form.get("label", "")).strip()
        expiry = str(form.get("expires", "never"))
        if not label or len(label) > 100 or expiry not in EXPIRY_DAYS:
            return await self.keys_page(
                request,
                error="Give the key a label (100 characters at most) and choose when it expires.",
                status=400,
            )
        if visit.who.method not in KEY_MAKERS:  # as the API: a key cannot mint keys
            why = "Log in with a password or OpenID to make keys."
            return self.pages.problem(visit, 403, "Not allowed", why)
        days = EXPIRY_DAYS[expiry]
        expires = None if days is None else time.time() + days * 86400
        guard = self.ui.state.guard
        assert guard is not None and guard.api_keys is not None
        key, details = await guard.api_keys.db.asked(
            guard.api_keys.create,
            visit.user,
            tuple(sorted(visit.who.groups)),
            label,
            (),
            expires,
            request.headers.get("user-agent", ""),
        )
        return await self.keys_page(request, created={"key": key, "label": details.label})

    async def revoke_key(self, request: Request) -> Response:
        visit = self.pages.visit(request)
        form = await self.pages.form(visit)
        if isinstance(form, Response):
            return form
        refused = self._key_owner(visit) or check_csrf(self.pages, visit, form)
        if refused is not None:
            return refused
        assert visit.user is not None
        meta = self.ui.state.meta
        await meta.asked(meta.revoke_api_key, visit.user, str(form.get("id", "")))
        return RedirectResponse(f"{BASE}/apikeys", status_code=303)
