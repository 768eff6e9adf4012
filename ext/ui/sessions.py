"""The UI's browser sessions: the registry's own (:mod:`ocireg.auth.sessions`), which OpenID
login makes too."""

from __future__ import annotations

from ocireg.auth.sessions import COOKIE, COOKIE_PATH, LIFETIME, Session, SessionStore

__all__ = ["COOKIE", "COOKIE_PATH", "LIFETIME", "Session", "SessionStore"]
