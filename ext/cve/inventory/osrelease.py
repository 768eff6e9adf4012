"""``os-release`` (freedesktop.org's format): shell-style ``KEY=value`` lines."""

from __future__ import annotations

import shlex

from ..packages import OsRelease

PATHS = ("etc/os-release", "usr/lib/os-release")  # the first one present wins


def parse(text: str) -> OsRelease | None:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, equals, value = line.strip().partition("=")
        if not equals or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue  # an unbalanced quote: the line is not valid os-release
        values[key] = words[0] if words else ""
    if not values.get("ID"):
        return None
    return OsRelease(
        id=values["ID"].lower(),
        version_id=values.get("VERSION_ID", ""),
        version_codename=values.get("VERSION_CODENAME", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
    )
