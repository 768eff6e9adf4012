"""OSV data published as an OCI artifact in a registry (as zot names its trivy database by a
repository), pulled for ``ocireg cve update --from`` and ``cve.sources``.

A source ``oci://HOST[:PORT]/REPOSITORY:TAG`` (or ``@sha256:...``) is pulled over HTTPS;
``oci+http://`` pulls from a registry served over plain HTTP. The reference must name an image
manifest whose ``artifactType`` (or, as older tools write it, whose config's media type) is
:data:`ARTIFACT_TYPE`; each of its layers is a zip of OSV JSON files (osv.dev's ``all.zip``),
a tar of them (plain or gzip) or one OSV JSON document (a record, or an array of records),
named by its media type (:data:`LAYER_TYPES`). Each layer is checked against its descriptor's
digest and size before anything is imported from it. Anonymous pulls only: a registry that
asks for a token gets an anonymous one (the distribution spec's token flow), one that asks for
a password is reported.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ocireg.registry import mediatypes as mt

from .errors import SourceError

ARTIFACT_TYPE = "application/vnd.ocireg.osv.v1"
ZIP = "application/vnd.ocireg.osv.v1+zip"
TAR = "application/vnd.ocireg.osv.v1.tar"
TAR_GZIP = "application/vnd.ocireg.osv.v1.tar+gzip"
JSON = "application/vnd.ocireg.osv.v1+json"
# the file each layer is written to: the importer tells zip, tar and JSON apart by content,
# the name only says what it is when it is reported
LAYER_TYPES = {ZIP: ".zip", TAR: ".tar", TAR_GZIP: ".tar.gz", JSON: ".json"}
SCHEMES = {"oci://": "https", "oci+http://": "http"}
MAX_MANIFEST = 4 * 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, read=300.0)
_REFERENCE = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9]+(?:[._/-]+[a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})|@(?P<digest>sha256:[a-f0-9]{64}))$"
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Reference:
    base: str  # scheme://host[:port]
    repository: str
    reference: str  # a tag or a digest

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.base}/{self.repository}{separator}{self.reference}"


def is_oci(source: str) -> bool:
    return source.startswith(tuple(SCHEMES))


def parse_reference(source: str) -> Reference:
    """``oci://HOST[:PORT]/REPOSITORY:TAG|@DIGEST`` (or ``oci+http://``); SourceError if not."""
    for prefix, scheme in SCHEMES.items():
        if source.startswith(prefix):
            found = _REFERENCE.match(source[len(prefix) :])
            if found is None:
                break
            reference = found["tag"] or found["digest"]
            return Reference(f"{scheme}://{found['host']}", found["repository"], reference)
    raise SourceError(
        f"{source}: not an OCI reference of the form oci://HOST[:PORT]/REPOSITORY:TAG "
        "(or @sha256:DIGEST; oci+http:// for a registry without TLS)"
    )


class _Registry:
    """GETs from one repository, answering a Bearer challenge with an anonymous token."""

    def __init__(self, where: Reference, client: httpx.Client) -> None:
        self.where = where
        self.client = client
        self.token = ""

    def get(self, path: str, accept: str = "") -> httpx.Response:
        url = f"{self.where.base}/v2/{self.where.repository}/{path}"
        headers = {"Accept": accept} if accept else {}
        response = self._send(url, headers)
        if response.status_code == 401 and not self.token:
            challenge = response.headers.get("www-authenticate", "")
            if not challenge.lower().startswith("bearer"):
                response.close()
                raise SourceError(f"{self.where}: the registry asks for credentials")
            response.close()
            self.token = self._anonymous_token(challenge)
            response = self._send(url, headers)
        if response.status_code != 200:
            response.read()
            response.close()
            raise SourceError(f"{self.where}: GET {path} answered HTTP {response.status_code}")
        return response

    def _send(self, url: str, headers: dict[str, str]) -> httpx.Response:
        if self.token:
            headers = {**headers, "Authorization": f"Bearer {self.token}"}
        try:
            return self.client.send(self.client.build_request("GET", url, headers=headers),
                                    stream=True)  # fmt: skip
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.where}: {exc}") from None

    def _anonymous_token(self, challenge: str) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise SourceError(f"{self.where}: a Bearer challenge without a realm")
        scope = params.get("scope") or f"repository:{self.where.repository}:pull"
        try:
            answer = self.client.get(realm, params={"service": params.get("service", ""),
                                                    "scope": scope})  # fmt: skip
            token = answer.json().get("token") or answer.json().get("access_token")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise SourceError(f"{self.where}: no anonymous token ({exc})") from None
        if answer.status_code != 200 or not isinstance(token, str):
            raise SourceError(f"{self.where}: no anonymous token (HTTP {answer.status_code})")
        return token


def _manifest(registry: _Registry) -> tuple[str, dict[str, Any]]:
    """The artifact's manifest and its digest."""
    accept = f"{mt.OCI_MANIFEST}, {mt.OCI_INDEX}"
    with closing(registry.get(f"manifests/{registry.where.reference}", accept)) as response:
        data = response.read()
    if len(data) > MAX_MANIFEST:
        raise SourceError(f"{registry.where}: a manifest of {len(data)} bytes")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if registry.where.reference.startswith("sha256:") and digest != registry.where.reference:
        raise SourceError(f"{registry.where}: the manifest served has digest {digest}")
    try:
        document = json.loads(data)
    except ValueError:
        raise SourceError(f"{registry.where}: the manifest is not JSON") from None
    if not isinstance(document, dict) or document.get("mediaType") != mt.OCI_MANIFEST:
        raise SourceError(f"{registry.where}: not an OCI image manifest (an index is not pulled)")
    config = document.get("config")
    kind = document.get("artifactType") or (config or {}).get("mediaType")
    if kind != ARTIFACT_TYPE:
        raise SourceError(f"{registry.where}: artifactType {kind!r}, not {ARTIFACT_TYPE}")
    return digest, document


def _layers(where: Reference, document: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(media type, digest, size) of each layer, every one of an OSV type."""
    found = []
    for number, layer in enumerate(document.get("layers") or []):
        media_type = layer.get("mediaType") if isinstance(layer, dict) else None
        if media_type not in LAYER_TYPES:
            raise SourceError(
                f"{where}: layer {number} is {media_type!r}, not one of {', '.join(LAYER_TYPES)}"
            )
        digest, size = layer.get("digest"), layer.get("size")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise SourceError(f"{where}: layer {number} has no sha256 digest")
        if not isinstance(size, int) or size < 0:
            raise SourceError(f"{where}: layer {number} has no size")
        found.append((media_type, digest, size))
    if not found:
        raise SourceError(f"{where}: the artifact has no layer")
    return found


def _download(registry: _Registry, digest: str, size: int, target: Path) -> None:
    hasher = hashlib.sha256()
    received = 0
    with closing(registry.get(f"blobs/{digest}")) as response, target.open("wb") as out:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > size:
                raise SourceError(f"{registry.where}: blob {digest} is longer than {size} bytes")
            hasher.update(chunk)
            out.write(chunk)
    if received != size or "sha256:" + hasher.hexdigest() != digest:
        raise SourceError(f"{registry.where}: blob {digest} does not match its descriptor")


def pull(source: str, into: Path, imported: str | None = None) -> tuple[str, list[Path]]:
    """The artifact's manifest digest, and its layers written into ``into`` (checked); no
    layer when the digest is ``imported`` (the artifact last imported from this source)."""
    where = parse_reference(source)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client:
        registry = _Registry(where, client)
        digest, document = _manifest(registry)
        files: list[Path] = []
        if digest == imported:
            return digest, files
        for number, (media_type, blob, size) in enumerate(_layers(where, document)):
            target = into / f"layer-{number}{LAYER_TYPES[media_type]}"
            _download(registry, blob, size, target)
            files.append(target)
    return digest, files
