"""One `_oci` discovery entry per URL namespace, as zot lists its extensions (one ``_zot``
entry whose endpoints are search's, userprefs' and mgmt's).

A namespace served by one extension points at that extension's definition document. One served
by several points at an overview generated from them (``ext-<namespace>.md``), which links each
definition document; the ``specs`` extension serves it beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from ocireg.state import Active


def by_namespace(actives: Iterable[Active]) -> dict[str, list[Active]]:
    """The active HTTP extensions grouped by namespace, each group in the order given."""
    groups: dict[str, list[Active]] = {}
    for active in actives:
        namespace = active.enabled.extension.namespace
        if namespace is not None and active.endpoints:
            groups.setdefault(namespace, []).append(active)
    return groups


def overview_name(namespace: str) -> str:
    """``_zot`` -> ``ext-zot.md``: never an extension's own (``ext-<ns>-<name>.md``) document."""
    return f"ext-{namespace.removeprefix('_')}.md"


def document_name(members: list[Active]) -> str:
    """The document a namespace's discovery entry links to."""
    if len(members) == 1:
        return PurePosixPath(members[0].enabled.extension.definition or "").name
    return overview_name(members[0].enabled.extension.namespace or "")


def description(namespace: str, members: list[Active]) -> str:
    if len(members) == 1:
        return members[0].enabled.extension.description
    names = ", ".join(member.enabled.name for member in members)
    return f"This registry's {namespace} extensions: {names}."


def overview(namespace: str, members: list[Active]) -> str:
    """The generated overview of a namespace, in the OCI extension document's shape."""
    lines = [
        f"# `{namespace}` extensions",
        "",
        "## Summary",
        "",
        f"The extensions this registry serves under `/v2/{namespace}/` (and "
        f"`/v2/<name>/{namespace}/`), generated from those that are enabled. Each one's "
        "definition document describes its endpoints.",
        "",
        "| extension | endpoints | definition |",
        "| --- | --- | --- |",
    ]
    for member in members:
        extension = member.enabled.extension
        definition = PurePosixPath(extension.definition or "").name
        endpoints = ", ".join(f"`{path}`" for path in member.endpoints)
        lines.append(
            f"| `{extension.name}`: {extension.description} | {endpoints} "
            f"| [{definition}]({definition}) |"
        )
    return "\n".join(lines) + "\n"
