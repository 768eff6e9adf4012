"""Java archives: ``META-INF/maven/<group>/<artifact>/pom.properties`` inside jars, wars and
ears, and inside the archives they nest (Spring Boot's ``BOOT-INF/lib``, a war's
``WEB-INF/lib``), to a fixed depth.

A zip's directory is at its end, so an archive is read whole into memory, within a size cap;
nested archives get a smaller cap. OSV names Maven packages ``groupId:artifactId``.
"""

from __future__ import annotations

import io
import logging
import zipfile

from .records import Record

log = logging.getLogger(__name__)

SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
NESTED_LIMIT = 32 * 1024 * 1024
PROPERTIES_LIMIT = 64 * 1024
MAX_DEPTH = 2


def wants(path: str) -> bool:
    return path.lower().endswith(SUFFIXES)


def properties(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, separator, value = line.partition("=")
        if separator:
            values[key.strip()] = value.strip()
    return values


def _pom(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Record | None:
    if info.file_size > PROPERTIES_LIMIT:
        return None
    values = properties(archive.read(info).decode("utf-8", "replace"))
    group, artifact, version = (values.get(k, "") for k in ("groupId", "artifactId", "version"))
    if not group or not artifact or not version:
        return None
    return Record(kind="maven", name=f"{group}:{artifact}", version=version)


def _records(data: bytes, depth: int) -> list[Record]:
    found: list[Record] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = info.filename
            if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                if (record := _pom(archive, info)) is not None:
                    found.append(record)
            elif depth < MAX_DEPTH and wants(name) and info.file_size <= NESTED_LIMIT:
                try:
                    found.extend(_records(archive.read(info), depth + 1))
                except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
                    log.warning("nested archive %s not readable: %s", name, error)
    return found


def read(data: bytes) -> tuple[Record, ...]:
    try:
        return tuple(dict.fromkeys(_records(data, 1)))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        log.warning("java archive not readable: %s", error)
        return ()
