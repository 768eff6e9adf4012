"""The report as one HTML page, in the conformance report's style: what was watched, then per
client its departures (level, rule linked to its section, count, the example request).
Everything a client sent (its User-Agent, paths, headers) is escaped."""

from __future__ import annotations

import html
from typing import Any

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh;
 box-sizing:border-box}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px;overflow-wrap:anywhere}
a{color:#0969da}code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
 overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid #eaeef2;
 overflow-wrap:anywhere}
th{background:#f6f8fa;font-weight:600}td.n{text-align:right}
tr.MUST td:first-child{box-shadow:inset 4px 0 #cf222e}
tr.SHOULD td:first-child{box-shadow:inset 4px 0 #bf8700}
tr.info td:first-child{box-shadow:inset 4px 0 #0969da}
.note{color:#57606a}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _example(example: dict[str, Any]) -> str:
    headers = "".join(
        f"<br><code>{_e(name)}: {_e(value)}</code>" for name, value in example["headers"].items()
    )
    request = f"{example['method']} {example['path']}"
    return f"<code>{_e(request)}</code> → {_e(example['status'])}{headers}"


def _client(client: dict[str, Any]) -> str:
    title = f"<h2>{_e(client['userAgent'])}</h2>"
    summary = f'<p class="note">{_e(client["requests"])} requests'
    if not client["departures"]:
        return f"{title}{summary}, no departure.</p>"
    rows = "".join(
        f'<tr class="{_e(d["level"])}"><td>{_e(d["level"])}</td>'
        f'<td><a href="{_e(d["section"])}">{_e(d["rule"])}</a><br>'
        f'<span class="note">{_e(d["summary"])}</span></td>'
        f'<td class="n">{_e(d["count"])}</td><td>{_example(d["example"])}</td></tr>'
        for d in client["departures"]
    )
    head = (
        '<tr><th style="width:8%">Level</th><th style="width:32%">Rule</th>'
        '<th style="width:7%">Count</th><th>First example</th></tr>'
    )
    return f"{title}{summary}.</p><table>{head}{rows}</table>"


def render_html(report: dict[str, Any], url: str) -> str:
    clients = "".join(_client(client) for client in report["clients"])
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Strict-client report: {_e(url)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>Strict-client report</h1>"
        f'<p class="note">Registry {_e(url)}, watching since {_e(report["since"])}. Each rule '
        "links the sentence of the distribution spec (or the RFC) it comes from; "
        "<code>info</code> marks requests a client could do without.</p>"
        f"{clients or '<p>No client has made a request yet.</p>'}</main></body></html>\n"
    )
