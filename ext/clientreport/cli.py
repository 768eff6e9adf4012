"""``ocireg client-report URL``: fetch a registry's strict-client report and print it as a
table (one row per client and rule, then the sections the rules link to) or ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

PATH = "/v2/_ocireg/clients/report"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    auth = None
    if args.user:
        name, _, password = args.user.partition(":")
        auth = (name, password)
    url = args.url.rstrip("/") + PATH
    try:
        response = httpx.get(url, auth=auth, verify=not args.insecure, timeout=60)
    except httpx.HTTPError as exc:
        raise SystemExit(f"ocireg client-report: {url}: {exc}") from None
    if response.status_code == 404:
        raise SystemExit(
            f"ocireg client-report: {url} answered 404: is the report on "
            "(ocireg serve --client-report)?"
        )
    if response.status_code != 200:
        raise SystemExit(f"ocireg client-report: {url} answered HTTP {response.status_code}")
    report: dict[str, Any] = response.json()
    return report


def render(report: dict[str, Any]) -> str:
    """The report as the console shows it."""
    rows: list[tuple[str, ...]] = [("CLIENT", "RULE", "LEVEL", "COUNT", "EXAMPLE")]
    sections: dict[str, str] = {}
    for client in report["clients"]:
        agent = client["userAgent"]
        if not client["departures"]:
            rows.append((agent, "(none)", "", "", f"{client['requests']} requests"))
        for departure in client["departures"]:
            example = departure["example"]
            shown = f"{example['method']} {example['path']} -> {example['status']}"
            rows.append((agent, departure["rule"], departure["level"],
                         str(departure["count"]), shown))  # fmt: skip
            sections[departure["rule"]] = departure["section"]
    if len(rows) == 1:
        return f"no clients since {report['since']}"
    lines = [f"since {report['since']}", _table(rows)]
    if sections:
        lines += ["", *(f"{rule}: {link}" for rule, link in sorted(sections.items()))]
    return "\n".join(lines)


def cmd_client_report(args: argparse.Namespace) -> int:
    report = _fetch(args)
    if args.html:
        from pathlib import Path

        from .page import render_html

        Path(args.html).write_text(render_html(report, args.url), encoding="utf-8")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print(render(report))
    return 0


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "client-report",
        help="print a registry's strict-client report (ocireg serve --client-report)",
    )
    command.add_argument("url", metavar="URL", help="the registry, e.g. http://127.0.0.1:5000")
    command.add_argument("-u", "--user", help="USER:PASSWORD of an administrator")
    command.add_argument("--insecure", action="store_true", help="do not verify TLS")
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")
    command.set_defaults(run=cmd_client_report)
