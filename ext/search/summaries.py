"""ImageSummary and RepoSummary from meta DB rows, as zot fills them.

Descriptive fields come from the manifest's OCI annotations, falling back to the image config's
labels and then to the older ``org.label-schema.*`` labels, as zot does. Layers carry their
sizes, ``History`` matches the config's history to the layers as zot does (:func:`history`),
and ``Vulnerabilities`` has zero counts and an empty ``MaxSeverity`` (zot's "not scanned")
until CVE scanning lands. An image is signed by a signature naming it as ``subject`` or by a
legacy cosign ``sha256-<hex>.sig`` tag; whether a signature is trusted is the trust extension's
verdict, read from its table (untrusted where trust never judged it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from ocireg.ext.trust.store import layer_verdicts
from ocireg.registry.signatures import cosign_tag

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


class Rows(Protocol):
    """What a summary reads: the meta DB itself, or one repository's rows read together
    (:class:`.rows.RepoRows`)."""

    def image(self, repo: str, digest: str) -> dict[str, Any] | None: ...

    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]: ...

    def tag_digest(self, repo: str, tag: str) -> str | None: ...

    def extension_read(self, query: str, *args: Any) -> list[Any]: ...


def when(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def created(row: dict[str, Any]) -> datetime | None:
    return timestamp(row.get("created") or "")


def timestamp(text: str) -> datetime | None:
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


def signatures(
    db: Rows, repo: str, digest: str, referrers: list[dict[str, Any]]
) -> list[t.SignatureSummary | None]:
    """Signatures naming the manifest as subject, and a legacy cosign tag beside it: one entry
    per signature layer, as zot (each layer is one signature), with trust's verdict."""
    found: list[t.SignatureSummary | None] = []
    for row in referrers:
        if row.get("signature"):
            found += _signature_layers(db, repo, row)
    tag = cosign_tag(digest)
    tagged = db.tag_digest(repo, tag) if tag is not None else None
    if tagged is not None:
        legacy = db.image(repo, tagged)
        if legacy is not None:
            found += _signature_layers(db, repo, legacy, "cosign")
        else:  # not in the meta DB yet
            found.append(t.SignatureSummary(Tool="cosign", IsTrusted=False, Author=""))
    return found


def vulnerabilities(search: Any, digests: list[str]) -> t.ImageVulnerabilitySummary:
    """The ``Vulnerabilities`` of image manifests (an index's together): from CVE scanning's
    stored results when it is on (``search.cve``), else zot's "not scanned"."""
    if search.cve is None:
        return not_scanned()
    from ..cve.answers import vulnerabilities as scanned

    return scanned(search.cve, digests)


def _signature_layers(
    db: Rows, repo: str, row: dict[str, Any], tool: str | None = None
) -> list[t.SignatureSummary | None]:
    """zot shows ``Author`` only for a trusted signature; trust's verdicts say which are."""
    verdicts = layer_verdicts(db, repo, row["digest"])
    entries: list[t.SignatureSummary | None] = []
    for layer in range(max(len(row.get("layers") or []), 1)):
        trusted, author = verdicts.get(layer, (False, ""))
        entries.append(
            t.SignatureSummary(Tool=tool or row["signature"], IsTrusted=trusted, Author=author)
        )
    return entries


def not_scanned() -> t.ImageVulnerabilitySummary:
    """zot's summary of an image nothing is known about: every count zero."""
    return t.ImageVulnerabilitySummary(
        MaxSeverity="",
        Count=0,
        UnknownCount=0,
        LowCount=0,
        MediumCount=0,
        HighCount=0,
        CriticalCount=0,
    )


def layers(row: dict[str, Any]) -> list[t.LayerSummary]:
    sizes = row.get("layer_sizes") or []
    return [
        t.LayerSummary(Digest=digest, Size=str(sizes[i]) if i < len(sizes) else None)
        for i, digest in enumerate(row["layers"])
    ]


def history(row: dict[str, Any]) -> list[t.LayerHistory | None]:
    """zot's rule (``getAllHistory``): without config history, one entry per layer with an
    empty description; else one entry per history entry, where each one that is not an
    ``empty_layer`` takes the next layer in order. History naming more layers than the
    manifest has ends at the first entry left without one (zot stops there too)."""
    summaries = layers(row)
    entries = row.get("history") or []
    if not entries:
        return [t.LayerHistory(Layer=layer, HistoryDescription=t.HistoryDescription())
                for layer in summaries]  # fmt: skip
    found: list[t.LayerHistory | None] = []
    next_layer = 0
    for entry in entries:
        described = t.LayerHistory(HistoryDescription=_description(entry))
        found.append(described)
        if entry["empty_layer"]:
            continue
        if next_layer >= len(summaries):
            break
        described.Layer = summaries[next_layer]
        next_layer += 1
    return found


def _description(entry: dict[str, Any]) -> t.HistoryDescription:
    return t.HistoryDescription(
        Created=timestamp(entry["created"]),
        CreatedBy=entry["created_by"],
        Author=entry["author"],
        Comment=entry["comment"],
        EmptyLayer=entry["empty_layer"],
    )


def manifest_summary(
    db: Rows,
    repo: str,
    row: dict[str, Any],
    known: tuple[list[dict[str, Any]], list[t.SignatureSummary | None]] | None = None,
) -> t.ManifestSummary:
    """``known``: the manifest's referrers and signatures, when the caller has read them."""
    referrers, signed = known if known is not None else _referrers_and_signatures(db, repo, row)
    platform = row["platforms"][0] if row["platforms"] else None
    return t.ManifestSummary(
        Digest=row["digest"],
        ConfigDigest=row["config_digest"] or None,
        LastUpdated=created(row) or when(row.get("pushed_at")),
        Size=str(row["content_size"]),
        IsSigned=bool(signed),
        SignatureInfo=signed,
        Platform=t.Platform(Os=platform.os, Arch=platform.arch) if platform else None,
        DownloadCount=row["downloads"],
        row=row,
        Referrers=[referrer(r) for r in referrers],
        ArtifactType=row["artifact_type"] or None,
    )


def _referrers_and_signatures(
    db: Rows, repo: str, row: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[t.SignatureSummary | None]]:
    referrers = db.referrers(repo, row["digest"])
    return referrers, signatures(db, repo, row["digest"], referrers)


def image_summary(
    db: Rows, repo: str, tag: str | None, row: dict[str, Any], tagged_at: float | None = None
) -> t.ImageSummary:
    referrers, signed = _referrers_and_signatures(db, repo, row)
    children = [db.image(repo, child) for child in row["children"]]
    manifests = [manifest_summary(db, repo, c) for c in children if c] or (
        [] if row["children"] else [manifest_summary(db, repo, row, (referrers, signed))]
    )
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
