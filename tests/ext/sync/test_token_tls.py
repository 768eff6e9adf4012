"""An upstream ocireg behind HTTPS (its CA in certDir) with token auth (the token-server
fixture): the mirror verifies it, gets a token with the pull scope using the credentials file,
and serves the image pulled on demand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.auth.tokenserver import TokenServer
from tests.certs import issue_server, make_ca
from tests.ext.sync.upstreams import (
    PASSWORD,
    USER,
    credentials_file,
    inspect_digest,
    mirror,
    skopeo,
)
from tests.liveserver import live_server
from tests.tools import require_binary

pytestmark = pytest.mark.e2e


def test_token_flow_over_tls_with_a_ca_from_cert_dir(tmp_path: Path) -> None:
    tool = require_binary("skopeo", "apt-get install skopeo")
    ca = make_ca(tmp_path / "pki", "ca")
    server_cert = issue_server(ca, tmp_path / "pki")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    shutil.copy(ca.cert_path, cert_dir / "ca.crt")
    layout = tmp_path / "layout"
    index_digest = build_multiarch_layout(layout, "v1")
    with TokenServer(tmp_path / "tokens", users={USER: PASSWORD}, anonymous=False) as tokens:
        extra = {
            "http": {
                "tls": {"cert": str(server_cert.cert_path), "key": str(server_cert.key_path)},
                "auth": {"bearer": tokens.config().model_dump()},
            }
        }
        with live_server(tmp_path / "upstream", extra) as upstream:
            skopeo(
                tool,
                "copy",
                "--all",
                "--dest-tls-verify=false",
                f"--dest-creds={USER}:{PASSWORD}",
                f"oci:{layout}:v1",
                f"docker://{upstream.host}/secure/app:v1",
            )
            creds = credentials_file(tmp_path / "creds.json", upstream.url)
            sync = {
                "credentialsFile": str(creds),
                "registries": [
                    {
                        "urls": [upstream.url],
                        "onDemand": True,
                        "tlsVerify": True,
                        "certDir": str(cert_dir),
                    }
                ],
            }
            before = len(tokens.requests)
            with mirror(tmp_path / "mirror", sync) as server:
                remote = f"docker://{server.host}/secure/app:v1"
                assert inspect_digest(tool, remote) == index_digest
                skopeo(
                    tool,
                    "copy",
                    "--all",
                    "--src-tls-verify=false",
                    remote,
                    f"oci:{tmp_path / 'out'}:v1",
                )
            asked = tokens.requests[before:]
            assert asked and {r.subject for r in asked} == {USER}
            assert all(scope == "repository:secure/app:pull" for r in asked for scope in r.scopes)
