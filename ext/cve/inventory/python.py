"""Python distributions: ``*.dist-info/METADATA`` (wheels, pip) and ``*.egg-info/PKG-INFO``
(setuptools; an ``.egg-info`` may also be that file itself).

Only the headers are read (``Name``, ``Version``): the body is the long description.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser

from .records import Record


def wants(path: str, is_file: bool) -> bool:
    return (
        path.endswith(".dist-info/METADATA")
        or path.endswith(".egg-info/PKG-INFO")
        or (is_file and path.endswith(".egg-info"))
    )


def read(data: bytes) -> tuple[Record, ...]:
    headers = BytesHeaderParser().parsebytes(data.split(b"\n\n", 1)[0])
    name, version = (str(headers.get(key, "")).strip() for key in ("Name", "Version"))
    if not name or not version:
        return ()
    return (Record(kind="pypi", name=name, version=version),)
