"""The rules a client can break, each with the level of the sentence it breaks and where that
sentence is. The report names rules by ``id``; the ids are part of the report's contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD", "info"]

DIST = "https://github.com/opencontainers/distribution-spec/blob/main/spec.md"
IMAGE = "https://github.com/opencontainers/image-spec/blob/main/descriptor.md"
HTTP = "https://www.rfc-editor.org/rfc/rfc9110"


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    summary: str
    section: str  # a link to the sentence the rule comes from


RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "manifest-put-content-type",
            "SHOULD",
            "manifest PUT without a manifest media type (or with parameters) in Content-Type",
            f"{DIST}#pushing-manifests",
        ),
        Rule(
            "blob-patch-content-type",
            "MUST",
            "blob PATCH whose Content-Type is not application/octet-stream",
            f"{DIST}#pushing-a-blob-in-chunks",
        ),
        Rule(
            "content-range-length-mismatch",
            "MUST",
            "blob PATCH whose Content-Range does not span Content-Length bytes",
            f"{DIST}#pushing-a-blob-in-chunks",
        ),
        Rule(
            "upload-location-ignored",
            "MUST",
            "upload PATCH or PUT to another URL than the Location the registry last returned",
            f"{DIST}#pushing-a-blob-in-chunks",
        ),
        Rule(
            "manifest-get-accept",
            "SHOULD",
            "manifest GET or HEAD whose Accept does not name the media type it is answered with",
            f"{DIST}#pulling-manifests",
        ),
        Rule(
            "head-after-push",
            "info",
            "HEAD of a blob the same client pushed to the repository in this push (before its "
            "next manifest PUT there)",
            f"{DIST}#checking-if-content-exists-in-the-registry",
        ),
        Rule(
            "blob-repush",
            "info",
            "upload of a blob that the registry told the same client it already has",
            f"{DIST}#mounting-a-blob-from-another-repository",
        ),
        Rule(
            "digest-algorithm",
            "SHOULD",
            "digest with an algorithm other than the registered sha256 and sha512",
            f"{IMAGE}#registered-algorithms",
        ),
        Rule(
            "authorization-before-challenge",
            "info",
            "credentials sent before the registry asked for them (before any challenge)",
            f"{HTTP}#section-11.6.1",
        ),
        Rule(
            "retry-after-ignored",
            "SHOULD",
            "request repeated before the Retry-After of a 429 or 503 answer had passed",
            f"{HTTP}#section-10.2.3",
        ),
        Rule(
            "redirect-not-followed",
            "SHOULD",
            "request repeated to a URL the registry had answered with a redirect (3xx and "
            "Location) instead of following it: before fetching the Location when that is on "
            "this registry, within 10 s of the redirect when it is elsewhere",
            f"{DIST}#pulling-blobs",
        ),
    )
}
