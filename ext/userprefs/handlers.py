"""``PUT /v2/_zot/ext/userprefs?action=toggleStar|toggleBookmark&repo=<name>``."""

from __future__ import annotations

from starlette.responses import Response

from ocireg import extensions
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import identity, may, query, registry
from ocireg.names import check_name

PREFERENCES = {"toggleStar": "starred", "toggleBookmark": "bookmarked"}


def setup(_context: SetupContext) -> None:
    return None


async def toggle() -> Response:
    # action and repo are required by the spec (400 before we get here); the action's values
    # are an enum there too
    preference, name = PREFERENCES[query("action") or ""], check_name(query("repo") or "")
    user = identity().user
    if user is None:  # no authentication configured: everybody is anonymous
        raise RegistryError(ErrorCode.DENIED, {"reason": "stars and bookmarks need a user"})
    # readable before existing: a 404 must not tell whether an unreadable repository exists
    if not may("read", name):
        guard = extensions.app_state().guard
        assert guard is not None  # there is a user, so authentication is configured
        raise await guard.deny({"name": name})
    if registry(name).index(name) is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    extensions.app_state().meta.toggle(user, name, preference)
    return Response(status_code=200)
