"""Package URLs (https://github.com/package-url/purl-spec), written directly.

``packageurl-python`` writes the same strings (a test holds them equal) but takes most of an
inventory's time on a full dpkg database, which the issue's one-second budget cannot spare.
"""

from __future__ import annotations

from urllib.parse import quote as _quote

# the types whose names and namespaces the spec (and packageurl-python) lowercase
LOWERCASE_NAME = {"pypi", "npm", "apk"}
LOWERCASE_NAMESPACE = {"pypi", "apk"}


def _encode(text: str) -> str:
    return _quote(text, safe="").replace("%3A", ":")


def purl(
    kind: str,
    namespace: str | None,
    name: str,
    version: str | None = None,
    qualifiers: dict[str, str] | None = None,
) -> str:
    if kind in LOWERCASE_NAME:
        name = name.lower()
    if kind == "pypi":
        name = name.replace("_", "-")
    text = f"pkg:{kind}/"
    if namespace:
        if kind in LOWERCASE_NAMESPACE:
            namespace = namespace.lower()
        segments = [segment for segment in namespace.strip("/").split("/") if segment.strip()]
        text += "/".join(_encode(segment) for segment in segments) + "/"
    text += _encode(name.strip("/"))
    if version:
        text += "@" + _encode(version)
    pairs = sorted((k.lower(), v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        text += "?" + "&".join(f"{key}={_encode(value)}" for key, value in pairs)
    return text
