"""zot's OpenID login endpoints (``http.auth.openid``): ``/zot/auth/login?provider=&callback_ui=``
sends the browser to the provider, ``/zot/auth/callback/{provider}`` takes it back, checks
everything and opens a session, and ``POST /zot/auth/logout`` closes it.

The session is the one the web UI's password login makes (:mod:`ocireg.auth.sessions`): the
UI's pages read it, and so does the API for requests a UI marks (``X-ZOT-API-CLIENT: zot-ui``),
which is how an OpenID user makes API keys at ``/zot/auth/apikey``, as in zot.

A failed return (a state that is not this browser's login, a code the provider refuses, an ID
token that is forged, expired, for another client or issuer, or with another nonce) is a 401
with its reason, and opens no session; for a login the web UI started, a 303 back to its login
page, which says the login failed (the reason goes to the log).
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ocireg.auth.guard import Guard
from ocireg.auth.sessions import COOKIE, COOKIE_PATH, LIFETIME, PENDING_LIFETIME, SessionStore
from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import app_state, query
from ocireg.logs import event
from ocireg.operations import current_request

# ocireg.auth.openid (its settings models, about 0.013 CPU s) is imported by the handlers that
# need it: connexion imports every handler module at a server's first request, OpenID or not.
if TYPE_CHECKING:
    from ocireg.auth.openid import Pending, Provider, ProviderUnavailable

log = logging.getLogger("ocireg.auth")
PENDING_COOKIE = "ocireg_openid"  # names the login on its way through the provider
UI_HOME = "/home"  # where the web UI lives, when it is on


def _openid() -> tuple[Guard, SessionStore]:
    guard = app_state().guard
    if guard is None or not guard.openid or guard.sessions is None:
        raise RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": "OpenID login is off (http.auth.openid)"}, status=404
        )
    return guard, guard.sessions


def _origin(request: Request) -> str:
    """The registry's own origin: http.externalUrl's, else the one the browser used."""
    external = app_state().config.http.externalUrl
    if external:
        parts = urlsplit(external)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.url.scheme}://{request.url.netloc}"


def _callback_target(request: Request, wanted: str | None) -> str:
    """Where the browser goes once logged in: a path of this registry, or a URL of an origin
    that is this registry's or in callbackAllowOrigins; nothing else (no open redirect)."""
    if not wanted:
        return UI_HOME if "ui" in app_state().extensions else ""
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in wanted):
        # browsers drop tabs and newlines and read a backslash as a slash: "/\t/evil" would
        # become "//evil", another site
        raise _bad_callback()
    parts = urlsplit(wanted)
    if not parts.scheme and not parts.netloc and wanted.startswith("/"):
        return wanted
    auth = app_state().config.http.auth
    allowed = {_origin(request)}
    if auth is not None and auth.openid is not None:
        allowed.update(auth.openid.callbackAllowOrigins)
    if parts.scheme in ("http", "https") and f"{parts.scheme}://{parts.netloc}" in allowed:
        return wanted
    raise _bad_callback()


def _bad_callback() -> RegistryError:
    return RegistryError(
        ErrorCode.UNSUPPORTED,
        {"reason": "callback_ui must be a page of this registry or of callbackAllowOrigins"},
        status=400,
    )


def _secure() -> bool:
    config = app_state().config
    auth = config.http.auth
    if auth is not None and auth.secureSession is not None:
        return auth.secureSession
    return config.http.tls is not None


async def login() -> Response:
    from ocireg.auth.openid import CALLBACK_PATH, ProviderUnavailable

    guard, sessions = _openid()
    request = current_request()
    name = query("provider") or ""
    provider = guard.openid.get(name)
    if provider is None:  # zot: 400
        known = ", ".join(sorted(guard.openid))
        raise RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": f"provider must be one of: {known}"}, status=400
        )
    callback = _callback_target(request, query("callback_ui"))
    redirect_uri = f"{_origin(request)}{CALLBACK_PATH}/{name}"
    try:
        url, pending = await provider.start(redirect_uri, callback)
    except ProviderUnavailable as exc:
        raise _unavailable(provider, exc) from None
    pending_cookie = await sessions.asked(sessions.start_pending, pending.as_dict())
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        PENDING_COOKIE,
        pending_cookie,
        max_age=int(PENDING_LIFETIME),
        path=f"{CALLBACK_PATH}/{name}",
        secure=_secure(),
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, not on a sub-request
    )
    return response


async def callback(provider: str) -> Response:
    from ocireg.auth.openid import CALLBACK_PATH, LoginRefused, ProviderUnavailable

    guard, sessions = _openid()
    request = current_request()
    relying_party = guard.openid.get(provider)
    if relying_party is None:
        raise RegistryError(
            ErrorCode.NAME_UNKNOWN, {"reason": f"no OpenID provider {provider!r}"}, status=404
        )
    kept = await sessions.asked(sessions.take_pending, request.cookies.get(PENDING_COOKIE))
    try:
        pending = _check_return(relying_party, kept)
        logged_in = await relying_party.finish(pending, query("code") or "")
    except LoginRefused as exc:
        event(log, logging.WARNING, "openid login refused", provider=provider, reason=str(exc))
        to_ui = _back_to_the_ui_login(kept, provider)
        if to_ui is not None:
            return to_ui
        raise _refused(str(exc)) from None
    except ProviderUnavailable as exc:
        raise _unavailable(relying_party, exc) from None
    groups = tuple(sorted(guard.access.groups_of(logged_in.user, list(logged_in.groups))))
    cookie, _ = await sessions.asked(sessions.create, logged_in.user, "openid", groups)
    event(log, logging.INFO, "openid login", provider=provider, user=logged_in.user)
    response: Response
    if pending.callback:
        response = RedirectResponse(pending.callback, status_code=302)
    else:
        document = {"user": logged_in.user, "groups": list(groups)}
        response = Response(json.dumps(document), 200, media_type="application/json")
    _set_session_cookie(response, cookie)
    response.delete_cookie(PENDING_COOKIE, path=f"{CALLBACK_PATH}/{provider}")
    return response


def _back_to_the_ui_login(kept: dict[str, str] | None, provider: str) -> Response | None:
    """For a login the web UI started: its login page, saying the login failed (the reason
    is in the log; a person gets a page, not an API error), and no session. None otherwise."""
    from ocireg.auth.openid import CALLBACK_PATH

    callback = (kept or {}).get("callback", "")
    from_ui = callback == UI_HOME or callback.startswith(f"{UI_HOME}/")
    if not from_ui or "ui" not in app_state().extensions:
        return None
    target = f"{UI_HOME}/login?{urlencode({'next': callback, 'failed': 'openid'})}"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(PENDING_COOKIE, path=f"{CALLBACK_PATH}/{provider}")
    return response


def _check_return(provider: Provider, kept: dict[str, str] | None) -> Pending:
    """The pending login this return belongs to; LoginRefused when it belongs to none."""
    from ocireg.auth.openid import LoginRefused, Pending

    if kept is None:
        raise LoginRefused("no login was started from this browser, or it took over 10 minutes")
    pending = Pending(**kept)
    if pending.provider != provider.name:
        raise LoginRefused("the login was started with another provider")
    error = query("error")
    if error:
        raise LoginRefused(f"the provider did not log you in: {error[:100]}")
    if not secrets.compare_digest((query("state") or "").encode(), pending.state.encode()):
        raise LoginRefused("the state is not this login's: start again")
    if not query("code"):
        raise LoginRefused("the provider sent no authorization code")
    return pending


def _set_session_cookie(response: Response, cookie: str) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(LIFETIME),
        path=COOKIE_PATH,
        secure=_secure(),
        httponly=True,
        samesite="lax",
    )


async def logout() -> Response:
    """Close the caller's browser session, if any (as zot: always 200)."""
    guard = app_state().guard
    request = current_request()
    if guard is not None and guard.sessions is not None:
        await guard.sessions.asked(guard.sessions.delete, request.cookies.get(COOKIE))
    response = Response(status_code=200)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _refused(reason: str) -> RegistryError:
    # no WWW-Authenticate: a browser would open its password dialog over the refusal
    return RegistryError(ErrorCode.UNAUTHORIZED, {"reason": f"OpenID login refused: {reason}"})


def _unavailable(provider: Provider, exc: ProviderUnavailable) -> RegistryError:
    event(log, logging.ERROR, "openid provider unavailable", provider=provider.name, error=str(exc))
    return RegistryError(
        ErrorCode.UNAVAILABLE,
        {"reason": f"the OpenID provider {provider.display_name} cannot be used now"},
        status=502,
    )
