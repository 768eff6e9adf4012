"""One request and the start of its answer, as the rules read them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
_UPLOAD = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<session>[^/]*)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$")

# the request headers an example shows; Authorization only by its scheme
SHOWN = ("accept", "content-type", "content-length", "content-range", "authorization")
VALUE_LIMIT = 256
PATH_LIMIT = 512


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # request headers, lower-case names
    status: int
    answer: dict[str, str]  # response headers, lower-case names
    started: float  # time.monotonic() when the request arrived

    def parameter(self, name: str) -> str | None:
        values = parse_qs(self.query).get(name)
        return values[0] if values else None

    def manifest(self) -> tuple[str, str] | None:
        found = _MANIFEST.match(self.path)
        return (found["name"], found["reference"]) if found else None

    def upload(self) -> tuple[str, str] | None:
        """(repository, session id) of an upload URL; the session is "" for the POST URL."""
        found = _UPLOAD.match(self.path)
        return (found["name"], found["session"]) if found else None

    def blob(self) -> tuple[str, str] | None:
        if self.upload() is not None:
            return None
        found = _BLOB.match(self.path)
        return (found["name"], found["digest"]) if found else None

    def example(self) -> dict[str, object]:
        """The request as the report shows it: no credentials, bounded in size."""
        target = self.path + (f"?{self.query}" if self.query else "")
        shown = {}
        for name in SHOWN:
            value = self.headers.get(name)
            if value is None:
                continue
            if name == "authorization":
                value = value.split(" ", 1)[0] + " (redacted)"
            shown[name] = value[:VALUE_LIMIT]
        return {
            "method": self.method,
            "path": target[:PATH_LIMIT],
            "headers": shown,
            "status": self.status,
        }
