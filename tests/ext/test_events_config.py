"""events configuration: zot's keys, ours beyond them, and refusals that name the key; the
per-sink figures in Prometheus; the bounded backlog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.cli import main
from ocireg.config import load_config
from ocireg.configcheck import ConfigError
from ocireg.extensions.loading import available, resolve
from tests.eventsink import Receiver
from tests.ext.test_events_faults import events_config, push_tags, references
from tests.ext.test_metrics import scrape, value
from tests.liveserver import free_port, live_server

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "events.yaml"


def settings(section: dict[str, Any]) -> Any:
    enabled, _ = resolve({"events": section}, "cfg.yaml", available())
    (events,) = [each for each in enabled if each.name == "events"]
    return events.settings


def problems(section: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        resolve({"events": section}, "cfg.yaml", available())
    return caught.value.problems


def test_the_example_loads_with_zot_keys_and_ours() -> None:
    config = load_config(EXAMPLE)
    events = settings(config.extensions["events"])
    http, nats = events.sinks
    assert (http.type, http.timeout, http.credentials.token) == ("http", 5.0, "change-me")
    assert http.repositories == ["prod/**"]
    assert http.signature.header == "X-Ocireg-Signature"
    assert (nats.type, nats.channel, nats.timeout) == ("nats", "registry.events", 10.0)
    assert events.source == "https://registry.example.com"


def test_zot_defaults() -> None:
    events = settings({"sinks": [{"type": "http", "address": "http://h/e", "timeout": 0}]})
    assert events.source == "zotregistry.dev"
    assert events.typePrefix == "zotregistry"
    assert events.sinks[0].timeout == 30.0  # zot: HTTP sinks default to 30s when not positive
    assert events.sinks[0].maxQueued == 10000


@pytest.mark.parametrize(
    ("sink", "problem"),
    [
        ({"type": "nats", "address": "nats://n"}, "needs channel"),
        (
            {"type": "nats", "address": "nats://n", "channel": "c", "proxy": "http://p"},
            "proxy applies to http sinks only",
        ),
        ({"type": "http", "address": "nats://n"}, "http:// or https:// URL"),
        (
            {"type": "http", "address": "http://h", "credentials": {"file": "/c"}},
            "credentials.file applies to nats sinks only",
        ),
        (
            {"type": "http", "address": "http://h", "credentials": {"username": "u"}},
            "username and password go together",
        ),
        (
            {"type": "http", "address": "http://h", "tls": {"certFile": "/c"}},
            "certFile and keyFile go together",
        ),
        ({"type": "http", "address": "http://h", "signature": {}}, "exactly one of secret"),
        ({"type": "http", "address": "http://h", "repositories": ["a/[b"]}, "a/[b"),
        ({"type": "http", "address": "http://h", "maxQueued": 0}, "maxQueued"),
        ({"type": "http", "address": "http://h", "nope": 1}, "sinks.0.nope"),
        ({"type": "kafka", "address": "k://h"}, "sinks.0.type"),
        (
            {"type": "http", "address": "http://h", "headers": {"X-A": "b\r\nX-Injected: 1"}},
            "headers.X-A: the value of header 'X-A' holds a CR, LF or NUL",
        ),
        (
            {"type": "http", "address": "http://h", "headers": {"X A": "b"}},
            "headers.X A: the header name 'X A' is not an HTTP token",
        ),
        (
            {"type": "http", "address": "http://h", "credentials": {"token": "t\nX: 1"}},
            "credentials.token: the value of header 'Authorization' holds a CR, LF or NUL",
        ),
        (
            {"type": "http", "address": "http://h", "signature": {"secret": "s", "header": "X:"}},
            "signature.header: the header name 'X:' is not an HTTP token",
        ),
    ],
)
def test_what_cannot_work_is_refused_naming_the_sink(sink: dict[str, Any], problem: str) -> None:
    (line,) = problems({"sinks": [sink]})
    assert line.startswith("cfg.yaml: extensions.events.sinks.0")
    assert problem in line


@pytest.mark.parametrize("key", ["source", "typePrefix"])
def test_a_source_or_type_prefix_that_cannot_be_a_header_is_refused(key: str) -> None:
    sink = {"type": "http", "address": "http://h"}
    (line,) = problems({"sinks": [sink], key: "a\r\nX-Injected: 1"})
    assert line.startswith("cfg.yaml: extensions.events")
    assert f"{key}: holds a CR, LF or NUL" in line


def test_an_unknown_event_type_in_a_filter_is_refused() -> None:
    sink = {"type": "http", "address": "http://h", "events": ["zotregistry.image.pushed"]}
    (line,) = problems({"sinks": [sink]})
    assert "sinks.0.events: unknown event type(s) ['zotregistry.image.pushed']" in line
    renamed = {
        "typePrefix": "com.example",
        "sinks": [{**sink, "events": ["com.example.image.updated"]}],
    }
    assert settings(renamed).sinks[0].events == ["com.example.image.updated"]


def test_verify_refuses_a_bad_sink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "storage: {rootDirectory: /d}\nextensions:\n  events:\n"
        "    sinks: [{type: nats, address: 'nats://n', channel: c, headers: {A: b}}]\n"
    )
    assert main(["verify", str(path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{path}: extensions.events.sinks.0: Value error, headers apply to http sinks only"
    )


def test_figures_per_sink_and_a_bounded_backlog(tmp_path: Path) -> None:
    receiver = Receiver()  # not listening yet
    config = events_config(receiver)
    config["extensions"]["events"]["sinks"][0]["maxQueued"] = 3
    config["extensions"]["metrics"] = {}
    sink = f"http:{receiver.url}"
    try:
        with live_server(tmp_path, config) as server, httpx.Client(base_url=server.url) as client:
            push_tags(client, ["backlog/a"], 5)  # 6 events: created and 5 updates
            receiver.wait_for(
                lambda _: value(scrape(client), "ocireg_events_failed_total", sink=sink) > 0
            )
            samples = scrape(client)
            assert value(samples, "ocireg_events_dropped_total", sink=sink) == 3
            assert value(samples, "ocireg_events_queued", sink=sink) == 3
            assert value(samples, "ocireg_events_sent_total", sink=sink) == 0
            receiver.start()
            got = receiver.wait_for(lambda r: len(r) == 3)
            assert references(got, "backlog/a") == ["t2", "t3", "t4"]  # the newest are kept
            receiver.wait_for(
                lambda _: value(scrape(client), "ocireg_events_queued", sink=sink) == 0
            )
            assert value(scrape(client), "ocireg_events_sent_total", sink=sink) == 3
            full = [
                line
                for line in server.log_events()
                if line.get("msg") == "events backlog full: oldest dropped"
            ]
            assert {line["sink"] for line in full} == {sink}
            assert sum(line["dropped"] for line in full) == 3  # in one round or several
    finally:
        receiver.stop()


def test_serve_stops_when_a_sink_file_cannot_be_read(tmp_path: Path) -> None:
    key = tmp_path / "garbage.key"
    key.write_text("not a key")
    sinks = [
        {"type": "http", "address": "https://h/e", "signature": {"secretFile": "/nonexistent"}},
        {
            "type": "http",
            "address": "https://h/e",
            "tls": {"certFile": str(key), "keyFile": str(key)},
        },
    ]
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "storage": {"rootDirectory": str(tmp_path / "d")},
                "http": {"address": "127.0.0.1", "port": free_port()},
                "extensions": {"events": {"sinks": sinks}},
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "ocireg", "serve", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert (
        "configuration: extensions.events.sinks.0.signature.secretFile: cannot read /nonexistent"
        in lines
    )
    assert any(
        line.startswith("configuration: extensions.events.sinks.1.tls: unusable") for line in lines
    )
