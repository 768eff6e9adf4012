"""``PUT /v2/_zot/ext/userprefs?action=toggleStar|toggleBookmark&repo=<name>``, answered with
zot's statuses: 403 for an anonymous caller (401 where no anonymous caller is admitted at all,
as zot's authentication refuses it first), 404 for an empty or unknown ``repo``."""

from __future__ import annotations

from starlette.responses import Response

from ocireg import extensions
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import identity, may, query, registry
from ocireg.names import check_name

PREFERENCES = {"toggleStar": "starred", "toggleBookmark": "bookmarked"}
NEEDS_A_USER = {"reason": "stars and bookmarks need a user"}


def setup(_context: SetupContext) -> None:
    return None


async def _user() -> str:
    """The caller's user name, or the refusal an anonymous caller gets."""
    who = identity()
    if who.user is not None:
        return who.user
    guard = extensions.app_state().guard
    if guard is None:  # no authentication configured: everybody is anonymous
        raise RegistryError(ErrorCode.DENIED, NEEDS_A_USER)
    if guard.access.admits_anonymous():
        raise await guard.deny(NEEDS_A_USER)
    raise await guard.refusal(who, [])  # the challenge: this registry wants a login


async def toggle() -> Response:
    # action and repo are required by the spec (400 before we get here); the action's values
    # are an enum there too
    preference = PREFERENCES[query("action") or ""]
    user = await _user()
    name = query("repo") or ""
    if not name:  # zot: an empty name is a repository that does not exist
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    check_name(name)
    # readable before existing: a 404 must not tell whether an unreadable repository exists
    if not may("read", name):
        guard = extensions.app_state().guard
        assert guard is not None  # there is a user, so authentication is configured
        raise await guard.deny({"name": name})
    reg = registry(name)
    if await reg.off_loop(reg.index, name) is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    meta = extensions.app_state().meta
    await meta.asked(meta.toggle, user, name, preference)
    return Response(status_code=200)
