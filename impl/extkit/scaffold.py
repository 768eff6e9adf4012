"""``ocireg ext new NAME --namespace NS``: a working extension as a package of its own.

The package is a separate distribution that declares the ``ocireg.extensions`` entry point:
installed beside ocireg with pip, it is discovered, routed, validated and listed in ``_oci``
discovery without a change to ocireg. It holds the declaration and settings, an OpenAPI fragment,
a definition document in the OCI extension format, handlers, and tests through HTTP.

The files are the templates under ``template/`` (``*.tmpl``), with ``@NAME@``, ``@NS@`` (the
namespace without its ``_``), ``@MODULE@``, ``@DIST@`` and ``@OCIREG_VERSION@`` replaced in
their paths and contents.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ocireg import __version__
from ocireg.extensions.declaration import _NAME_RE, _NAMESPACE_RE, RESERVED_NAMESPACES

SUFFIX = ".tmpl"


class ScaffoldError(ValueError):
    """Bad input: one line saying what and why."""


def names(name: str, namespace: str) -> dict[str, str]:
    """The replacements for an extension ``name`` in ``namespace`` (with or without its
    leading ``_``), or ScaffoldError naming the rule broken."""
    if not _NAME_RE.fullmatch(name):
        raise ScaffoldError(
            f"extension name {name!r}: lowercase letters and digits, starting with a letter "
            f"({_NAME_RE.pattern})"
        )
    ns = namespace if namespace.startswith("_") else f"_{namespace}"
    if not _NAMESPACE_RE.fullmatch(ns):
        raise ScaffoldError(
            f"namespace {namespace!r}: {_NAMESPACE_RE.pattern} after the leading '_' "
            "(the distribution spec's extension namespaces)"
        )
    if ns in RESERVED_NAMESPACES:
        raise ScaffoldError(f"namespace {ns} is reserved by the OCI")
    bare = ns[1:]
    module = "ocireg_" + re.sub(r"[^a-z0-9]", "_", f"{bare}_{name}")
    return {
        "@NAME@": name,
        "@NS@": bare,
        "@MODULE@": module,
        "@DIST@": f"ocireg-{re.sub(r'[^a-z0-9]', '-', bare)}-{name}",
        "@OCIREG_VERSION@": __version__,
    }


def _fill(text: str, replacements: dict[str, str]) -> str:
    for token, value in replacements.items():
        text = text.replace(token, value)
    return text


def _templates(folder: Traversable, prefix: str = "") -> list[tuple[str, str]]:
    """(relative path with tokens, content) of every template under ``folder``."""
    found: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            found += _templates(entry, f"{path}/")
        elif entry.name.endswith(SUFFIX):
            found.append((path.removesuffix(SUFFIX), entry.read_text(encoding="utf-8")))
    return found


def scaffold(name: str, namespace: str, target: Path) -> list[Path]:
    """Write the package into ``target`` (absent or empty) and return the files written."""
    replacements = names(name, namespace)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target}: exists and is not an empty directory")
    written = []
    for relative, content in _templates(resources.files("ocireg.extkit") / "template"):
        path = target / _fill(relative, replacements)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(content, replacements), encoding="utf-8")
        written.append(path)
    return written
