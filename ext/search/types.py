"""zot's search schema as strawberry types: every type, field and argument spelled as zot's
``schema.graphql`` spells it (PascalCase fields; ``auto_camel_case`` is off), because zot's
``zli`` and web UI check names by introspection. ``spec/graphql/schema.graphql`` is the printed
result, kept equal by a test."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

# zot's `Time` scalar; the schema maps Python datetimes to it (scalar_overrides)
TIME = strawberry.scalar(
    name="Time",
    description="A date and time, RFC 3339.",
    serialize=lambda value: value.isoformat().replace("+00:00", "Z"),
    parse_value=lambda value: datetime.fromisoformat(str(value).replace("Z", "+00:00")),
)


@strawberry.type(description="A CVE list for one image.")
class CVEResultForImage:
    Tag: str | None = None
    CVEList: list[CVE | None] | None = None
    Summary: ImageVulnerabilitySummary | None = None
    Page: PageInfo | None = None


@strawberry.type(description="One image: repository, tag, and optionally digest and platform.")
class ImageIdentifier:
    Repo: str
    Tag: str
    Digest: str | None = None
    Platform: Platform | None = None


@strawberry.type(description="CVEs of one image that another does not have.")
class CVEDiffResult:
    Minuend: ImageIdentifier
    Subtrahend: ImageIdentifier
    CVEList: list[CVE | None] | None = None
    Summary: ImageVulnerabilitySummary | None = None
    Page: PageInfo | None = None


@strawberry.type(description="A vulnerability.")
class CVE:
    Id: str | None = None
    Title: str | None = None
    Description: str | None = None
    Reference: str | None = None
    Severity: str | None = None
    PackageList: list[PackageInfo | None] | None = None


@strawberry.type(description="A vulnerable package.")
class PackageInfo:
    Name: str | None = None
    PackagePath: str | None = None
    InstalledVersion: str | None = None
    FixedVersion: str | None = None


def _image_vulnerabilities(root: ImageSummary, info: strawberry.Info) -> ImageVulnerabilitySummary:
    """Counted only when a query asks (from CVE scanning's results, see summaries)."""
    from .summaries import vulnerabilities

    manifests = [m.Digest for m in root.Manifests or [] if m is not None and m.Digest]
    return vulnerabilities(info.context, manifests or [root.Digest or ""])


@strawberry.type(description="A repository's images and summary.")
class RepoInfo:
    Images: list[ImageSummary | None] | None = None
    Summary: RepoSummary | None = None


@strawberry.type(description="What a global search found.")
class GlobalSearchResult:
    Page: PageInfo | None = None
    Images: list[ImageSummary | None] | None = None
    Repos: list[RepoSummary | None] | None = None
    Layers: list[LayerSummary | None] | None = None


@strawberry.type(description="A tagged image or index, or an untagged manifest.")
class ImageSummary:
    RepoName: str | None = None
    Tag: str | None = None
    Digest: str | None = None
    MediaType: str | None = None
    Manifests: list[ManifestSummary | None] | None = None
    Size: str | None = None
    DownloadCount: int | None = None
    LastPullTimestamp: datetime | None = None
    PushTimestamp: datetime | None = None
    PushedBy: str | None = None
    TaggedTimestamp: datetime | None = None
    LastUpdated: datetime | None = None
    Description: str | None = None
    IsSigned: bool | None = None
    SignatureInfo: list[SignatureSummary | None] | None = None
    Licenses: str | None = None
    Labels: str | None = None
    Title: str | None = None
    Source: str | None = None
    Documentation: str | None = None
    Vendor: str | None = None
    Authors: str | None = None
    Vulnerabilities: ImageVulnerabilitySummary | None = strawberry.field(
        resolver=_image_vulnerabilities
    )
    Referrers: list[Referrer | None] | None = None
    IsDeletable: bool | None = None
    ArtifactType: str | None = None


def _layers(root: ManifestSummary, info: strawberry.Info) -> list[LayerSummary | None] | None:
    from .summaries import layers  # summaries builds these types

    if root.row is None:
        return None
    # Search.charge, the answer's size bound, before the list is decoded: a query refused on
    # it must not have decoded (and kept) every 28,000-layer list it was refused for
    info.context.charge(_layer_count(root.row))
    return list(layers(root.row))


def _layer_count(row: dict[str, Any]) -> int:
    """How many layers a row lists, from its stored JSON when not decoded yet: a list of
    digests, which hold no comma."""
    encoded = getattr(row, "encoded", None)
    if encoded is None or dict.__contains__(row, "layers"):
        return len(row["layers"])
    raw = (encoded("layers") or "").strip()
    return 0 if raw in ("", "[]") else raw.count(",") + 1


def _history(root: ManifestSummary, info: strawberry.Info) -> list[LayerHistory | None] | None:
    from .summaries import history

    if root.row is None:
        return None
    info.context.charge(0)  # refused at once once the answer is over its bound
    found = history(root.row)
    info.context.charge(len(found))
    return found


def _manifest_vulnerabilities(
    root: ManifestSummary, info: strawberry.Info
) -> ImageVulnerabilitySummary:
    from .summaries import vulnerabilities

    return vulnerabilities(info.context, [root.Digest or ""])


@strawberry.type(description="One manifest of an image (one platform of an index).")
class ManifestSummary:
    """``Layers`` and ``History`` are built only when a query selects them: an image may have
    tens of thousands of layers, and most queries (zui's lists, counts) never ask."""

    Digest: str | None = None
    ConfigDigest: str | None = None
    LastUpdated: datetime | None = None
    Size: str | None = None
    IsSigned: bool | None = None
    SignatureInfo: list[SignatureSummary | None] | None = None
    Platform: Platform | None = None
    DownloadCount: int | None = None
    Layers: list[LayerSummary | None] | None = strawberry.field(resolver=_layers)
    History: list[LayerHistory | None] | None = strawberry.field(resolver=_history)
    Vulnerabilities: ImageVulnerabilitySummary | None = strawberry.field(
        resolver=_manifest_vulnerabilities
    )
    Referrers: list[Referrer | None] | None = None
    ArtifactType: str | None = None
    row: strawberry.Private[dict[str, Any] | None] = None  # the meta DB's, for the above

    def layer_digests(self) -> list[str]:
        return list(self.row["layers"]) if self.row is not None else []

    def names_layer(self, text: str) -> bool:
        """Whether a layer digest contains ``text``. Looked for in the stored JSON list when it
        is not decoded yet (a substring search; decoding 28,000 digests takes far longer), which
        gives the same answer for any text without a quote or a comma."""
        encoded = getattr(self.row, "encoded", None)
        raw = encoded("layers") if encoded is not None else None
        if raw is not None and '"' not in text and "," not in text:
            return text in raw
        return any(text in digest for digest in self.layer_digests())


@strawberry.type(description="Vulnerability counts of an image.")
class ImageVulnerabilitySummary:
    MaxSeverity: str | None = None
    Count: int | None = None
    UnknownCount: int | None = None
    LowCount: int | None = None
    MediumCount: int | None = None
    HighCount: int | None = None
    CriticalCount: int | None = None


@strawberry.type(description="A repository.")
class RepoSummary:
    Name: str | None = None
    LastUpdated: datetime | None = None
    Size: str | None = None
    Platforms: list[Platform | None] | None = None
    Vendors: list[str | None] | None = None
    NewestImage: ImageSummary | None = None
    DownloadCount: int | None = None
    StarCount: int | None = None
    IsBookmarked: bool | None = None
    IsStarred: bool | None = None
    Rank: int | None = None


@strawberry.type(description="A layer.")
class LayerSummary:
    Size: str | None = None
    Digest: str | None = None


@strawberry.type(description="One history entry of an image config.")
class HistoryDescription:
    Created: datetime | None = None
    CreatedBy: str | None = None
    Author: str | None = None
    Comment: str | None = None
    EmptyLayer: bool | None = None


@strawberry.type(description="A layer with its history entry.")
class LayerHistory:
    Layer: LayerSummary | None = None
    HistoryDescription: HistoryDescription | None = None


@strawberry.type(description="An annotation.")
class Annotation:
    Key: str | None = None
    Value: str | None = None


@strawberry.type(description="A manifest whose subject is the image.")
class Referrer:
    MediaType: str | None = None
    ArtifactType: str | None = None
    Size: int | None = None
    Digest: str | None = None
    Annotations: list[Annotation | None]


@strawberry.type(description="An operating system and architecture.")
class Platform:
    Os: str | None = None
    Arch: str | None = None


@strawberry.type(description="A signature of an image.")
class SignatureSummary:
    Tool: str | None = None
    IsTrusted: bool | None = None
    Author: str | None = None


@strawberry.enum(description="How results are sorted.")
class SortCriteria(Enum):
    RELEVANCE = "RELEVANCE"
    UPDATE_TIME = "UPDATE_TIME"
    ALPHABETIC_ASC = "ALPHABETIC_ASC"
    ALPHABETIC_DSC = "ALPHABETIC_DSC"
    SEVERITY = "SEVERITY"
    STARS = "STARS"
    DOWNLOADS = "DOWNLOADS"


@strawberry.type(description="How many results there are, and how many this page has.")
class PageInfo:
    TotalCount: int
    ItemCount: int


@strawberry.input(description="Which page: item offset, item count, order.")
class PageInput:
    limit: int | None = None
    offset: int | None = None
    sortBy: SortCriteria | None = None


@strawberry.input(description="An operating system and architecture.")
class PlatformInput:
    Os: str | None = None
    Arch: str | None = None


@strawberry.input(description="One image: repository, tag, and optionally digest and platform.")
class ImageInput:
    Repo: str
    Tag: str
    Digest: str | None = None
    Platform: PlatformInput | None = None


@strawberry.type(description="A page of repositories.")
class PaginatedReposResult:
    Page: PageInfo | None
    Results: list[RepoSummary]


@strawberry.type(description="A page of images.")
class PaginatedImagesResult:
    Page: PageInfo | None
    Results: list[ImageSummary]


@strawberry.input(description="Which images to keep.")
class Filter:
    Os: list[str | None] | None = None
    Arch: list[str | None] | None = None
    HasToBeSigned: bool | None = None
    IsBookmarked: bool | None = None
    IsStarred: bool | None = None
