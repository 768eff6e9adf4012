"""apk's database, ``lib/apk/db/installed``: one paragraph of ``X:value`` lines a package.

``P`` name, ``V`` version, ``A`` architecture, ``o`` origin: the aport (source package) that
Alpine's security database names.
"""

from __future__ import annotations

from .records import Record

INSTALLED = "lib/apk/db/installed"


def wants(path: str) -> bool:
    return path == INSTALLED


def _record(fields: dict[str, str]) -> Record | None:
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        return None
    return Record(
        kind="apk",
        name=name,
        version=version,
        source_name=fields.get("o") or name,
        source_version=version,
        arch=fields.get("A", ""),
    )


def read(data: bytes) -> tuple[Record, ...]:
    records = []
    fields: dict[str, str] = {}
    for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
        if not line.strip():
            if (record := _record(fields)) is not None:
                records.append(record)
            fields = {}
            continue
        key, colon, value = line.partition(":")
        if colon and len(key) == 1 and key not in fields:
            fields[key] = value  # the first of each key: the package's own, not its files'
    return tuple(records)
