"""How values look on the pages: sizes, times, digests, pull commands, layer bars."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

_UNITS = ("B", "KB", "MB", "GB", "TB")


def size(value: Any) -> str:
    """Bytes as people read them (powers of 1000, as docker and zui show sizes)."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return "—"
    unit = 0
    while amount >= 1000 and unit < len(_UNITS) - 1:
        amount /= 1000
        unit += 1
    return f"{amount:.0f} {_UNITS[unit]}" if unit == 0 else f"{amount:.1f} {_UNITS[unit]}"


def when(value: Any, now: datetime | None = None) -> str:
    """An RFC 3339 time as "3 hours ago", or as its date ("1 Mar 2026") once it is more than a
    month old (the exact time goes in a title attribute)."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds >= 31 * 86400:
        return f"{moment.day} {moment:%b %Y}"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def short_digest(digest: Any) -> str:
    text = str(digest or "")
    algorithm, _, hex_part = text.partition(":")
    return f"{algorithm}:{hex_part[:12]}" if hex_part else text


def platforms(items: Any) -> list[str]:
    """``os/arch`` of each platform, once each, in order."""
    seen: list[str] = []
    for item in items or []:
        if not item or not item.get("Os"):
            continue
        name = f"{item['Os']}/{item.get('Arch') or '?'}"
        if name not in seen:
            seen.append(name)
    return seen


IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


def is_artifact(artifact_type: Any) -> bool:
    """Whether search's ArtifactType names an artifact rather than a runnable image's config."""
    return bool(artifact_type) and artifact_type not in IMAGE_CONFIGS


def pull_commands(host: str, repo: str, tag: str, artifact: bool = False) -> list[tuple[str, str]]:
    """(client, command) pairs, as zui offers them."""
    ref = f"{host}/{repo}:{tag}"
    last = repo.rsplit("/", 1)[-1]
    if artifact:
        return [("oras", f"oras pull {ref}"), ("podman", f"podman artifact pull {ref}")]
    return [
        ("docker", f"docker pull {ref}"),
        ("podman", f"podman pull {ref}"),
        ("skopeo", f"skopeo copy docker://{ref} oci:{last}:{tag}"),
        ("oras", f"oras pull {ref}"),
    ]


def pretty_json(data: bytes | None) -> str | None:
    """A JSON document indented for reading, or None when it is not JSON."""
    if data is None:
        return None
    try:
        return json.dumps(json.loads(data), indent=2, sort_keys=False)
    except ValueError:
        return None


def layer_bar(layers: list[dict[str, Any]], width: int = 1000) -> list[dict[str, Any]]:
    """Segments of the layer-size bar: each layer's share of the image, in order, at least one
    unit wide so that a small layer still shows."""
    sizes = [max(int(layer.get("Size") or 0), 0) for layer in layers]
    total = sum(sizes) or 1
    segments, x = [], 0.0
    for number, amount in enumerate(sizes):
        share = max(width * amount / total, 1.0 if amount else 0.0)
        segments.append(
            {
                "x": round(x, 2),
                "width": round(share, 2),
                "number": number + 1,
                "size": size(amount),
                "percent": f"{100 * amount / total:.1f}",
            }
        )
        x += share
    return segments


def public_host(request: Any) -> str:
    """The registry's host as clients reach it, for pull commands: ``http.externalUrl``'s when
    it is set (behind a proxy the request's own Host may be an internal name), else the
    request's."""
    from urllib.parse import urlsplit

    from ocireg.state import state_of

    external = state_of(request.scope).config.http.externalUrl
    host = urlsplit(external).netloc if external else ""
    return host or str(request.url.netloc)


SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def severity_chart(counts: dict[str, Any], width: int = 1000) -> list[dict[str, Any]]:
    """Segments of the severity bar, most severe first: each level's share of the image's CVEs
    (levels without any are left out)."""
    amounts = [(level, int(counts.get(f"{level.title()}Count") or 0)) for level in SEVERITY_ORDER]
    total = sum(amount for _, amount in amounts)
    segments, x = [], 0.0
    for level, amount in amounts:
        if not amount:
            continue
        share = width * amount / total
        segments.append(
            {"level": level, "count": amount, "x": round(x, 2), "width": round(share, 2)}
        )
        x += share
    return segments


def stamp(seconds: Any) -> str:
    """A Unix time as RFC 3339 (UTC)."""
    try:
        return datetime.fromtimestamp(float(seconds), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return ""


def ago(seconds: Any) -> str:
    """A Unix time as "3 hours ago"."""
    return when(stamp(seconds)) if stamp(seconds) else "—"


def duration(seconds: Any) -> str:
    """Seconds as people read them: "120 ms", "4.2 s", "3 min"."""
    try:
        amount = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if amount < 1:
        return f"{amount * 1000:.0f} ms"
    if amount < 120:
        return f"{amount:.1f} s"
    return f"{amount / 60:.0f} min"
