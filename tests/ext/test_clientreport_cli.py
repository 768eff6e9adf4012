"""``ocireg serve --client-report`` and ``ocireg client-report URL`` on the console."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from ocireg.cli import main
from tests.ext.clientreportlive import reporting_server
from tests.liveserver import free_port, live_server, write_config


def test_the_report_on_the_console_as_a_table_and_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with reporting_server(tmp_path / "server") as server:
        agent = {"User-Agent": "md5-client/0.1"}
        httpx.head(f"{server.url}/v2/a/blobs/md5:{'0' * 32}", headers=agent)
        httpx.get(f"{server.url}/v2/", headers={"User-Agent": "polite/2"})
        assert main(["client-report", server.url]) == 0
        table = capsys.readouterr().out.splitlines()
        assert main(["client-report", server.url, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
    assert table[0].startswith("since ")
    assert table[1].split() == ["CLIENT", "RULE", "LEVEL", "COUNT", "EXAMPLE"]
    rows = [line.split() for line in table[2:] if line.startswith(("md5-client", "polite"))]
    example = ["HEAD", f"/v2/a/blobs/md5:{'0' * 32}", "->", "404"]
    assert rows == [
        ["md5-client/0.1", "digest-algorithm", "SHOULD", "1", *example],
        ["polite/2", "(none)", "1", "requests"],
    ]
    assert "digest-algorithm: https://github.com/opencontainers/image-spec" in "\n".join(table)
    agents = [client["userAgent"] for client in report["clients"]]
    assert {"md5-client/0.1", "polite/2"} <= set(agents)


class _Page(HTMLParser):
    """The text of the page's headings and table cells, and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_heading = tag == "h2"
        self.scripts += tag == "script"
        self.links += [value or "" for name, value in attrs if tag == "a" and name == "href"]

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings.append(data)
            self._in_heading = False


def test_the_report_as_an_html_page_escapes_what_clients_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "<script>alert(1)</script>"
    with reporting_server(tmp_path / "server") as server:
        httpx.head(f"{server.url}/v2/a/blobs/md5:{'1' * 32}", headers={"User-Agent": hostile})
        page_file = tmp_path / "report.html"
        assert main(["client-report", server.url, "--html", str(page_file)]) == 0
    capsys.readouterr()
    page = _Page()
    page.feed(page_file.read_text())
    assert page.scripts == 0
    assert hostile in page.headings  # shown as text, not run
    assert "https://github.com/opencontainers/image-spec/blob/main/descriptor.md" \
        "#registered-algorithms" in page.links  # fmt: skip


def test_a_registry_without_the_report_says_how_to_turn_it_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with live_server(tmp_path) as server, pytest.raises(SystemExit) as stopped:
        main(["client-report", server.url])
    assert "answered 404: is the report on (ocireg serve --client-report)?" in str(stopped.value)


@pytest.mark.parametrize(
    ("section", "argv"),
    [
        ({"clientreport": {"maxClients": 5}}, ["verify"]),
        ({"clientreport": {"maxClients": 5}}, ["serve"]),
        ({}, ["serve", "--client-report"]),
    ],
    ids=["verify", "serve", "serve-flag"],
)
def test_the_report_refuses_several_workers(
    tmp_path: Path, section: dict[str, object], argv: list[str]
) -> None:
    extra = {"http": {"workers": 2}, "extensions": section}
    config = write_config(tmp_path, tmp_path / "data", free_port(), extra)
    command, *flags = argv
    result = subprocess.run(
        [sys.executable, "-m", "ocireg", command, str(config), *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    where = str(config) if "--client-report" not in flags else "configuration"
    assert (
        f"{where}: extensions.clientreport.enable: needs http.workers 1, not 2 "
        "(the report is in one process)"
    ) in result.stderr
