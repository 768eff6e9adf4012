"""The ``cluster`` section is honoured or refused with its key path: by ``ocireg verify`` for
what the file alone shows, by ``ocireg serve`` for what depends on the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocireg.cli import main
from tests.liveserver import free_port

KEY = "loremipsumdolors"


def _write(tmp_path: Path, cluster: dict[str, Any], **http: Any) -> Path:
    document = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"address": "127.0.0.1", "port": 5000, **http},
        "cluster": cluster,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"members": ["127.0.0.1:5000"], "hashKey": "short"}, "cluster.hashKey: Value error, "),
        ({"members": [], "hashKey": KEY}, "cluster.members: List should have at least 1 item"),
        ({"members": ["127.0.0.1"], "hashKey": KEY}, "cluster.members: Value error, "),
        ({"members": ["a:1", "a:1"], "hashKey": KEY}, "a member is listed twice"),
        ({"members": ["a:1"], "hashKey": KEY, "replicas": 2}, "cluster.replicas: unknown key"),
        (
            {"members": ["a:1"], "hashKey": KEY, "tls": {"cacert": "/ca.crt"}},
            "cluster.tls: members talk over TLS only when they serve it: set http.tls too",
        ),
        (
            {"members": ["a:1"], "hashKey": KEY, "tls": {"cert": "/m.crt", "key": "/m.key"}},
            "cluster.tls: Value error, cert, key: members do not show client certificates",
        ),
    ],
)
def test_verify_refuses_what_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, cluster, tls={"cert": "/s.crt", "key": "/s.key"})
    if "members talk over TLS" in message:
        path = _write(tmp_path, cluster)
    assert main(["verify", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_verify_accepts_a_cluster_and_no_longer_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"members": ["127.0.0.1:5000", "127.0.0.1:5001"], "hashKey": KEY})
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr()
    assert "cluster" not in out.err
    assert out.out.strip() == f"{path}: configuration is valid"


def test_verify_refuses_client_certificates_in_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = {"cert": "/s.crt", "key": "/s.key", "cacert": "/ca.crt"}
    path = _write(tmp_path, {"members": ["a:1"], "hashKey": KEY}, tls=tls)
    assert main(["verify", str(path)]) == 1
    assert "http.tls.cacert (client certificates) cannot be used in a cluster" in (
        capsys.readouterr().err
    )


def _serve(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocireg", "serve", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_serve_refuses_when_no_member_is_this_instance(tmp_path: Path) -> None:
    mine = free_port()
    others = ["127.0.0.1:1", f"192.0.2.1:{mine}"]  # another port; an address not here
    path = _write(tmp_path, {"members": others, "hashKey": KEY}, port=mine)
    result = _serve(path)
    assert result.returncode != 0
    assert "cluster.members: exactly one member must be this instance" in result.stderr
    assert f"http.port {mine}" in result.stderr


def test_serve_refuses_a_cluster_ca_it_cannot_read(tmp_path: Path) -> None:
    from tests.certs import issue_server, make_ca

    server = issue_server(make_ca(tmp_path / "pki", "ca"), tmp_path / "pki")
    port = free_port()
    tls = {"cert": str(server.cert_path), "key": str(server.key_path)}
    cluster = {"members": [f"127.0.0.1:{port}"], "hashKey": KEY, "tls": {"cacert": "/no/ca"}}
    result = _serve(_write(tmp_path, cluster, port=port, tls=tls))
    assert result.returncode != 0
    assert "cluster.tls.cacert: cannot be used" in result.stderr
