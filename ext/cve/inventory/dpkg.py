"""dpkg's database: ``var/lib/dpkg/status``, and distroless images' ``status.d/<package>``.

Both are RFC 822-style paragraphs; only installed packages count (the last word of
``Status``). ``Source`` may carry its own version (``Source: glibc (2.36-9)``, for binNMUs);
without one the source version is the binary's, and without ``Source`` the source package is
the binary package itself, which is what Debian's advisories name.
"""

from __future__ import annotations

from collections.abc import Iterator

from .records import Record

STATUS = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d"


def wants(path: str) -> bool:
    if path == STATUS:
        return True
    directory, _, base = path.rpartition("/")
    return directory == STATUS_DIR and bool(base) and not base.endswith(".md5sums")


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0] in " \t":
            continue  # a continuation line: no field the inventory reads has one
        else:
            key, colon, value = line.partition(":")
            if colon:
                fields[key.strip().lower()] = value.strip()
    if fields:
        yield fields


def _installed(fields: dict[str, str]) -> bool:
    status = fields.get("status")
    # distroless status.d files carry no Status: they only list installed packages
    return status is None or status.split()[-1:] == ["installed"]


def read(data: bytes) -> tuple[Record, ...]:
    records = []
    for fields in paragraphs(data.decode("utf-8", "replace")):
        name, version = fields.get("package", ""), fields.get("version", "")
        if not name or not version or not _installed(fields):
            continue
        source, _, source_version = fields.get("source", "").partition(" ")
        records.append(
            Record(
                kind="deb",
                name=name,
                version=version,
                source_name=source or name,
                source_version=source_version.strip("()") or version,
                arch=fields.get("architecture", ""),
            )
        )
    return tuple(records)
