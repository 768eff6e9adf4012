"""ImageSummary and RepoSummary from meta DB rows, as zot fills them.

Descriptive fields come from the manifest's OCI annotations, falling back to the image config's
labels and then to the older ``org.label-schema.*`` labels, as zot does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ocireg.meta.db import MetaDB

from . import types as t

_OCI = "org.opencontainers.image."
_FIELDS = {
    "Description": ("description", "org.label-schema.description"),
    "Licenses": ("licenses", "org.label-schema.license"),
    "Title": ("title", "org.label-schema.name"),
    "Source": ("source", "org.label-schema.vcs-url"),
    "Documentation": ("documentation", "org.label-schema.usage"),
    "Vendor": ("vendor", "org.label-schema.vendor"),
    "Authors": ("authors", "org.label-schema.maintainer"),
}


def when(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def created(row: dict[str, Any]) -> datetime | None:
    text = row.get("created") or ""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def described(row: dict[str, Any]) -> dict[str, str | None]:
    annotations, labels = row.get("annotations") or {}, row.get("labels") or {}
    found: dict[str, str | None] = {}
    for name, (suffix, legacy) in _FIELDS.items():
        key = _OCI + suffix
        found[name] = annotations.get(key) or labels.get(key) or labels.get(legacy)
    return found


def referrer(row: dict[str, Any]) -> t.Referrer:
    return t.Referrer(
        MediaType=row["media_type"],
        ArtifactType=row["artifact_type"] or None,
        Size=row["size"],
        Digest=row["digest"],
        Annotations=[t.Annotation(Key=k, Value=v) for k, v in sorted(row["annotations"].items())],
    )


def signatures(referrers: list[dict[str, Any]]) -> list[t.SignatureSummary | None]:
    return [
        t.SignatureSummary(Tool=row["signature"], IsTrusted=False, Author="")
        for row in referrers
        if row.get("signature")
    ]


def manifest_summary(db: MetaDB, repo: str, row: dict[str, Any]) -> t.ManifestSummary:
    referrers = db.referrers(repo, row["digest"])
    platform = row["platforms"][0] if row["platforms"] else None
    return t.ManifestSummary(
        Digest=row["digest"],
        ConfigDigest=row["config_digest"] or None,
        LastUpdated=created(row) or when(row.get("pushed_at")),
        Size=str(row["content_size"]),
        IsSigned=bool(signatures(referrers)),
        SignatureInfo=signatures(referrers),
        Platform=t.Platform(Os=platform.os, Arch=platform.arch) if platform else None,
        DownloadCount=row["downloads"],
        Layers=[t.LayerSummary(Digest=layer) for layer in row["layers"]],
        History=[],
        Referrers=[referrer(r) for r in referrers],
        ArtifactType=row["artifact_type"] or None,
    )


def image_summary(
    db: MetaDB, repo: str, tag: str | None, row: dict[str, Any], tagged_at: float | None = None
) -> t.ImageSummary:
    referrers = db.referrers(repo, row["digest"])
    children = [db.image(repo, child) for child in row["children"]]
    manifests = [manifest_summary(db, repo, c) for c in children if c] or (
        [] if row["children"] else [manifest_summary(db, repo, row)]
    )
    signed = signatures(referrers)
    about = described(row)
    updated = [m.LastUpdated for m in manifests if m.LastUpdated is not None]
    pushed = when(row.get("pushed_at"))
    return t.ImageSummary(
        RepoName=repo,
        Tag=tag,
        Digest=row["digest"],
        MediaType=row["media_type"],
        Manifests=list(manifests),
        Size=str(row["content_size"] + sum(c["content_size"] for c in children if c)),
        DownloadCount=row["downloads"],
        LastPullTimestamp=when(row.get("last_pull")),
        PushTimestamp=when(row.get("pushed_at")),
        PushedBy=row.get("pushed_by") or "",
        TaggedTimestamp=when(tagged_at),
        LastUpdated=max(updated, default=pushed),
        IsSigned=bool(signed),
        SignatureInfo=signed,
        Labels=None,
        Referrers=[referrer(r) for r in referrers],
        IsDeletable=True,
        ArtifactType=row["artifact_type"] or None,
        Description=about["Description"],
        Licenses=about["Licenses"],
        Title=about["Title"],
        Source=about["Source"],
        Documentation=about["Documentation"],
        Vendor=about["Vendor"],
        Authors=about["Authors"],
    )
