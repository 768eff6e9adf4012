"""Repository names and tags: the spec's grammar plus the limits our storage layout needs."""

from __future__ import annotations

import re

from ocireg.errors import ErrorCode, RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
NAME_MAX = 255

# A repository is a directory holding an OCI image layout, and repositories nest (`a` and `a/b`).
# A nested component spelled like a layout entry would land inside its parent's layout.
RESERVED_COMPONENTS = frozenset({"blobs", "index.json", "oci-layout"})
# A repository path is "/v2/<name>/<fixed suffix>"; anchoring the suffix at the end splits it
# one way only, even for names with components such as "blobs" or "manifests".
_REPOSITORY_PATH = re.compile(
    r"^/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+|tags/list"
    r"|referrers/[^/]+)$"
)


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid repository name, or None if it is."""
    if len(name) > NAME_MAX:
        return f"repository name is longer than {NAME_MAX} characters"
    if not NAME_RE.fullmatch(name):
        return "repository name must match " + NAME_RE.pattern
    reserved = [c for c in name.split("/")[1:] if c in RESERVED_COMPONENTS]
    if reserved:
        return f"repository name component {reserved[0]!r} is reserved by the storage layout"
    return None


def check_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise RegistryError(ErrorCode.NAME_INVALID, {"name": name, "reason": problem})
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            {"tag": tag, "reason": "tag must match " + TAG_RE.pattern},
            message="invalid tag",
        )
    return tag


def repository_of(path: str) -> str | None:
    """The repository an API path addresses (``/v2/a/b/tags/list`` -> ``a/b``), or None."""
    match = _REPOSITORY_PATH.match(path)
    return match["name"] if match else None
