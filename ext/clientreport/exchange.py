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

    def __post_init__(self) -> None:
        # what the path names, matched once: every check asks (the watcher's cost per request)
        self._parameters = parse_qs(self.query) if self.query else {}
        self._manifest = self._upload = self._blob = None
        if (found := _MANIFEST.match(self.path)) is not None:
            self._manifest = (found["name"], found["reference"])
        elif (found := _UPLOAD.match(self.path)) is not None:
            self._upload = (found["name"], found["session"])
        elif (found := _BLOB.match(self.path)) is not None:
            self._blob = (found["name"], found["digest"])

    def parameter(self, name: str) -> str | None:
        values = self._parameters.get(name)
        return values[0] if values else None

    def manifest(self) -> tuple[str, str] | None:
        return self._manifest

    def upload(self) -> tuple[str, str] | None:
        """(repository, session id) of an upload URL; the session is "" for the POST URL."""
        return self._upload

    def blob(self) -> tuple[str, str] | None:
        return self._blob

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
