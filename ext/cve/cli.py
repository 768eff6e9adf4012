"""``ocireg cve``: import OSV data (``update``) and ask a registry about CVEs (``list``,
``images``: zli's ``cve list`` and ``cve affected`` for ocireg), as a table or ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

LIST_QUERY = """query ($image: String!, $page: PageInput) {
  CVEListForImage(image: $image, requestedPage: $page) {
    Tag Page { TotalCount ItemCount }
    Summary { MaxSeverity Count UnknownCount LowCount MediumCount HighCount CriticalCount }
    CVEList { Id Title Description Severity Reference
      PackageList { Name PackagePath InstalledVersion FixedVersion } }
  }
}"""
IMAGES_QUERY = """query ($id: String!) {
  ImageListForCVE(id: $id) {
    Page { TotalCount ItemCount }
    Results { RepoName Tag Digest Vulnerabilities { MaxSeverity Count } }
  }
}"""


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _configured_sources(extensions: dict[str, Any]) -> list[str]:
    from ocireg.configcheck import normalise_keys
    from ocireg.ext.search.settings import SearchSettings

    section = {str(k).lower(): v for k, v in extensions.items()}.get("search")
    if not isinstance(section, dict):
        return []
    settings = SearchSettings.model_validate(normalise_keys(section, SearchSettings))
    return list(settings.cve.sources) if settings.cve is not None else []


def cmd_update(args: argparse.Namespace) -> int:
    from ocireg.config import load_config
    from ocireg.meta.db import SQLiteMetaDB
    from ocireg.registry.build import meta_dir

    from .errors import SourceError
    from .importer import update
    from .scanning import rematch
    from .store import CveStore

    config = load_config(args.config)  # the extensions' sections are valid once it loads
    sources = args.sources or _configured_sources(config.extensions or {})
    if not sources:
        print("ocireg cve update: give --from PATH|URL|oci://REF or configure "
              "extensions.search.cve.sources", file=sys.stderr)  # fmt: skip
        return 2
    shared = meta_dir(config, None)
    assert shared is not None
    SQLiteMetaDB(shared / "meta.db").close()  # created and migrated as the server would
    store = CveStore(shared / "meta.db")
    try:
        touched: set[tuple[str, str]] = set()
        for source in sources:
            try:
                done = update(store, source)
            except SourceError as exc:
                print(f"ocireg cve update: {exc}", file=sys.stderr)
                return 1
            touched |= done.result.touched
            if done.artifact_unchanged:
                print(f"{source}: artifact {done.artifact} already imported, not pulled")
                continue
            r = done.result
            print(f"{source}: {r.stored} stored ({r.withdrawn} withdrawn), "
                  f"{r.unchanged} unchanged, {done.rejected.count} rejected")  # fmt: skip
            for example in done.rejected.examples:
                print(f"  rejected {example}", file=sys.stderr)
        print(f"{rematch(store, frozenset(touched))} scanned image(s) matched again")
    finally:
        store.close()
    return 0


def _ask(args: argparse.Namespace, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    import httpx

    auth = None
    if args.user:
        name, _, password = args.user.partition(":")
        auth = (name, password)
    url = args.url.rstrip("/") + "/v2/_zot/ext/search"
    try:
        response = httpx.post(url, json={"query": query, "variables": variables}, auth=auth,
                              verify=not args.insecure, timeout=60)  # fmt: skip
    except httpx.HTTPError as exc:
        raise SystemExit(f"ocireg cve: {url}: {exc}") from None
    if response.status_code != 200:
        raise SystemExit(f"ocireg cve: {url} answered HTTP {response.status_code}")
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise SystemExit("ocireg cve: " + "; ".join(e.get("message", "") for e in body["errors"]))
    data: dict[str, Any] = body["data"]
    return data


def cmd_list(args: argparse.Namespace) -> int:
    found = _ask(args, LIST_QUERY, {"image": args.image})["CVEListForImage"]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("ID", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED", "TITLE")]
    for cve in found["CVEList"] or []:
        for package in cve["PackageList"] or [{}]:
            rows.append((cve["Id"], cve["Severity"], package.get("Name", ""),
                         package.get("InstalledVersion", ""), package.get("FixedVersion", ""),
                         (cve["Title"] or "")[:60]))  # fmt: skip
    print(_table(rows))
    s = found["Summary"]
    print(f"{s['Count']} CVE(s): {s['CriticalCount']} critical, {s['HighCount']} high, "
          f"{s['MediumCount']} medium, {s['LowCount']} low, {s['UnknownCount']} unknown",
          file=sys.stderr)  # fmt: skip
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    found = _ask(args, IMAGES_QUERY, {"id": args.cve})["ImageListForCVE"]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("REPOSITORY", "TAG", "DIGEST", "MAX SEVERITY")]
    for image in found["Results"] or []:
        vulnerabilities = image.get("Vulnerabilities") or {}
        rows.append((image["RepoName"], image["Tag"] or "", (image["Digest"] or "")[:19],
                     vulnerabilities.get("MaxSeverity") or ""))  # fmt: skip
    print(_table(rows))
    return 0


def _remote(command: Any) -> None:
    command.add_argument("url", metavar="URL", help="the registry, e.g. http://127.0.0.1:5000")
    command.add_argument("-u", "--user", help="USER:PASSWORD for basic authentication")
    command.add_argument("--insecure", action="store_true", help="do not verify TLS")
    command.add_argument("--json", action="store_true", help="print the answer as JSON")


def add_parser(commands: Any) -> None:
    cve = commands.add_parser("cve", help="CVE data and results (extensions.search.cve)")
    sub = cve.add_subparsers(dest="cve_command", required=True, metavar="COMMAND")
    update = sub.add_parser(
        "update",
        help="import OSV records into the meta DB and match the affected images again",
    )
    update.add_argument("config", metavar="CONFIG")
    update.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="PATH|URL|oci://REF",
        help="a zip, a tar, a directory or a file of OSV JSON, an http(s) URL of one, or an "
        "OSV artifact in a registry (oci://HOST[:PORT]/REPO:TAG; oci+http:// without TLS) "
        "(repeatable; default: extensions.search.cve.sources)",
    )
    update.set_defaults(run=cmd_update)
    listing = sub.add_parser("list", help="the CVEs of an image (REPO:TAG or REPO@DIGEST)")
    _remote(listing)
    listing.add_argument("image", metavar="REPO:TAG")
    listing.set_defaults(run=cmd_list)
    images = sub.add_parser("images", help="the images a CVE is found in")
    _remote(images)
    images.add_argument("cve", metavar="CVE-ID")
    images.set_defaults(run=cmd_images)
