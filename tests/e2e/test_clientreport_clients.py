"""Real clients through a registry started with ``--client-report``: each test asserts the
departures that client really makes, as read from its traffic (request log and report):

* skopeo 1.9.3, copy in to a new repository and back out: none. It checks each blob with HEAD
  (twice for a layer), pushes in chunks (POST, one PATCH with ``application/octet-stream`` to
  the returned Location, PUT), sends one ``Accept`` line per manifest type, and sends
  credentials only after the challenge of ``GET /v2/``.
* skopeo, the same image into a second repository: its blob-info cache (in ``$HOME``; for
  root, the shared ``/var/lib/containers/cache``) knows the layers are in the first, so it
  checks them there with HEAD and mounts them; the config blobs are not in that cache, so it
  uploads them again (``blob-repush``, 2).
* oras-py (User-Agent ``python-requests/*``): pushes and pulls with no departure while every
  blob is new to it; pushing the same artifact again to its repository HEADs each blob (200)
  and uploads nothing. Each later push to another repository uploads again what it pushed
  before instead of mounting it: the empty config ``{}`` of a chunked push of another file
  (``blob-repush``, 1), the layer and the config of the same file (2 more).
* buildah 1.28.2 (``Buildah/1.28.2``), an image from scratch pushed: none. Per blob a HEAD
  (404), POST, one PATCH to the returned Location, PUT; then the manifest.
* podman 4.3.1 (``containers/5.23.1``), a pull: none (manifest GET, then each blob GET). The
  pulled image tagged into another repository and pushed: it HEADs the layer under its
  uncompressed digest (the config's diff_id; 404), then under the digest it pulled, in the
  source repository (200), and mounts it; the config blob, which it also pulled, is not in
  its blob-info cache, so it uploads it again (``blob-repush``, 1), as skopeo does.
* httpx against ``storage.redirectBlobURL`` on s3 (moto): with ``follow_redirects`` none;
  without, asking again at once after the 307 is ``redirect-not-followed``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.auth.registries import full_access, write_htpasswd
from tests.ext.clientreportlive import counts, departures_of, reporting_server
from tests.liveserver import LiveServer
from tests.oci import push_blob
from tests.s3server import ENV, S3Endpoint, s3_endpoint
from tests.tools import missing

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

pytestmark = pytest.mark.e2e

NO_TLS = ("--src-tls-verify=false", "--dest-tls-verify=false")


def _skopeo(skopeo: str, home: Path, *args: str) -> None:
    env = {**os.environ, "HOME": str(home)}  # its blob-info cache, unless it runs as root
    result = subprocess.run([skopeo, *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"


def test_skopeo_copy_in_and_out(skopeo: str, tmp_path: Path) -> None:
    users = {"ci": "ci-pw"}
    access = {**full_access("ci"), "adminPolicy": {"users": ["ci"], "actions": []}}
    htpasswd = write_htpasswd(tmp_path / "htpasswd", users)
    extra = {"http": {"auth": {"htpasswd": {"path": str(htpasswd)}}, "accessControl": access}}
    source, home = tmp_path / "source", tmp_path / "home"
    # new content: a shared blob-info cache must not know it from an earlier test's server
    build_multiarch_layout(source, "v1", salt=secrets.token_hex(8))
    with reporting_server(tmp_path / "server", extra) as server:
        one, two = f"docker://{server.host}/sk/one:v1", f"docker://{server.host}/sk/two:v1"
        _skopeo(skopeo, home, "copy", "--all", *NO_TLS, "--dest-creds=ci:ci-pw",
                f"oci:{source}:v1", one)  # fmt: skip
        _skopeo(skopeo, home, "copy", "--all", *NO_TLS, "--src-creds=ci:ci-pw",
                one, f"oci:{tmp_path / 'back'}:v1")  # fmt: skip
        admin = {"auth": ("ci", "ci-pw")}
        assert departures_of(server, "skopeo/", **admin) == {}
        _skopeo(skopeo, home, "copy", "--all", *NO_TLS, "--dest-creds=ci:ci-pw",
                f"oci:{source}:v1", two)  # fmt: skip
        found = departures_of(server, "skopeo/", **admin)
    assert counts(found) == {"blob-repush": 2}
    assert found["blob-repush"]["example"]["path"].startswith("/v2/sk/two/blobs/uploads/")
    assert found["blob-repush"]["example"]["headers"]["authorization"] == "Basic (redacted)"


@pytest.fixture
def oras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    try:
        import oras.client
    except ImportError:
        missing("the oras SDK is not installed: pip install oras")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return oras


def test_oras_push_and_pull(oras: ModuleType, tmp_path: Path) -> None:
    Path("artifact.bin").write_bytes(os.urandom(300 * 1024))
    with reporting_server(tmp_path / "server") as server:
        client = oras.client.OrasClient(hostname=server.host, insecure=True)
        client.push(files=["artifact.bin"], target=f"{server.host}/or/mono:v1")
        client.push(files=["artifact.bin"], target=f"{server.host}/or/mono:v2")
        client.pull(target=f"{server.host}/or/mono:v1", outdir=str(tmp_path / "out"))
        assert departures_of(server, "python-requests/") == {}
        Path("chunked.bin").write_bytes(os.urandom(250 * 1024))
        client.push(files=["chunked.bin"], target=f"{server.host}/or/chunked:v1",
                    do_chunked=True, chunk_size=100 * 1024)  # fmt: skip
        found = departures_of(server, "python-requests/")
        assert counts(found) == {"blob-repush": 1}  # the empty config
        example = found["blob-repush"]["example"]
        assert (example["method"], example["headers"]["content-length"]) == ("PUT", "2")
        assert example["path"].startswith("/v2/or/chunked/blobs/uploads/")
        client.push(files=["artifact.bin"], target=f"{server.host}/or/copy:v1")
        found = departures_of(server, "python-requests/")
    assert counts(found) == {"blob-repush": 3}


def test_httpx_that_follows_redirects_and_one_that_does_not(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    """``storage.redirectBlobURL`` on s3: a blob GET answers 307 to a presigned URL. httpx with
    ``follow_redirects`` fetches it from the bucket and asks nothing again; without, a client
    that asks the registry again at once gets another 307 and is reported."""
    driver = s3_endpoint.driver_config(s3_endpoint.new_bucket(), rootdirectory="registry")
    config = {"storage": {"storageDriver": driver, "redirectBlobURL": True}}
    with reporting_server(tmp_path / "server", config, env=ENV) as server:
        follower = {"User-Agent": "follower/1.0"}
        with httpx.Client(base_url=server.url, headers=follower, timeout=60) as client:
            digest = push_blob(client, "redir/blob", b"served by the bucket")
            url = f"/v2/redir/blob/blobs/{digest}"
            pulled = client.get(url, follow_redirects=True)
            assert pulled.content == b"served by the bucket"
            assert [step.status_code for step in pulled.history] == [307]
        stubborn = {"User-Agent": "stubborn/1.0"}
        with httpx.Client(base_url=server.url, headers=stubborn, timeout=60) as client:
            statuses = [client.get(url).status_code for _ in range(2)]  # never to the bucket
        assert statuses == [307, 307]
        assert departures_of(server, "follower/") == {}
        found = departures_of(server, "stubborn/")
    assert counts(found) == {"redirect-not-followed": 1}
    assert found["redirect-not-followed"]["example"]["path"] == url


class Containers:
    """podman or buildah with storage of their own (vfs, in a temporary directory): they
    push, pull and tag without running a container, so they need no cgroups or overlay."""

    def __init__(self, binary: str, where: Path, runroot: Path) -> None:
        self.binary = binary
        self.options = ["--storage-driver", "vfs", "--root", str(where / "root"),
                        "--runroot", str(runroot)]  # fmt: skip
        if Path(binary).name == "podman":  # no systemd or journald in a container
            self.options += ["--cgroup-manager", "cgroupfs", "--events-backend", "file",
                             "--tmpdir", str(where / "tmp")]  # fmt: skip
        self.env = {**os.environ, "HOME": str(where / "home")}

    def __call__(self, *args: str) -> str:
        result = subprocess.run([self.binary, *self.options, *args], capture_output=True,
                                text=True, timeout=180, env=self.env)  # fmt: skip
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        return result.stdout


@pytest.fixture
def runroots() -> Iterator[Path]:
    """A short directory for run roots: podman refuses one longer than 50 characters, which
    pytest's temporary directories are."""
    where = Path(tempfile.mkdtemp(prefix="ocireg-run-"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


def _built(buildah: Containers, tmp_path: Path, image: str) -> None:
    """An image from scratch with one random layer (new digests each run: the blob-info
    cache that root's containers/image keeps in /var/lib/containers/cache knows none)."""
    (tmp_path / "layer.bin").write_bytes(os.urandom(200 * 1024))
    buildah("from", "--name", "work", "scratch")
    buildah("copy", "work", str(tmp_path / "layer.bin"), "/layer.bin")
    buildah("config", "--label", "built.by=buildah", "work")
    buildah("commit", "work", image)


def _layer_digests(server: LiveServer, repo: str, tag: str) -> tuple[str, str]:
    """(the digest of the image's one layer, its uncompressed digest from the config)."""
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    with httpx.Client(base_url=server.url, headers=accept) as client:
        manifest = client.get(f"/v2/{repo}/manifests/{tag}").json()
        config = client.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}").json()
    (layer,) = manifest["layers"]
    (diff_id,) = config["rootfs"]["diff_ids"]
    return layer["digest"], diff_id


def _requests(server: LiveServer, since: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of the requests logged after the first ``since`` log lines."""
    found = []
    for line in server.log_events()[since:]:
        if line.get("msg") == "request":
            found.append((line["method"], line["path"], line["status"]))
    return found


def test_buildah_from_scratch_commit_and_push(buildah: str, tmp_path: Path, runroots: Path) -> None:
    build = Containers(buildah, tmp_path / "buildah", runroots / "b")
    _built(build, tmp_path, "localhost/made:v1")
    with reporting_server(tmp_path / "server") as server:
        build(
            "push", "--tls-verify=false", "localhost/made:v1", f"docker://{server.host}/bh/made:v1"
        )
        found = departures_of(server, "Buildah/")
        sent = _requests(server, 0)
    assert found == {}
    # what it sent: for each blob a HEAD (404), POST, one PATCH to the Location, PUT; then
    # the manifest; nothing it did not need
    assert [method for method, path, _ in sent if "/bh/made/" in path] == [
        *["HEAD", "POST", "PATCH", "PUT"] * 2, "PUT"]  # fmt: skip


def test_podman_pull_tag_and_push_elsewhere(
    buildah: str, podman: str, tmp_path: Path, runroots: Path
) -> None:
    build = Containers(buildah, tmp_path / "buildah", runroots / "b")
    pod = Containers(podman, tmp_path / "podman", runroots / "p")
    _built(build, tmp_path, "localhost/made:v1")
    with reporting_server(tmp_path / "server") as server:
        host = server.host
        build("push", "--tls-verify=false", "localhost/made:v1", f"docker://{host}/src/img:v1")
        pod("pull", "--tls-verify=false", f"{host}/src/img:v1")
        assert departures_of(server, "containers/") == {}  # a pull: manifest, then blobs
        since = len(server.log_events())
        pod("tag", f"{host}/src/img:v1", f"{host}/dst/img:v2")
        pod("push", "--tls-verify=false", f"{host}/dst/img:v2")
        found = departures_of(server, "containers/")
        pushed = _requests(server, since)
        layer, diff_id = _layer_digests(server, "src/img", "v1")
    # It looks for the layer by its uncompressed digest (its storage keeps that), then where
    # its blob-info cache says it pulled it from, and mounts it from there.
    assert ("HEAD", f"/v2/dst/img/blobs/{diff_id}", 404) in pushed
    assert ("HEAD", f"/v2/src/img/blobs/{layer}", 200) in pushed
    assert ("POST", "/v2/dst/img/blobs/uploads/", 201) in pushed  # the mount
    # The config blob it also pulled from src/img is not in that cache: it uploads it again.
    assert counts(found) == {"blob-repush": 1}
    example = found["blob-repush"]["example"]
    assert example["method"] == "PUT"
    assert example["path"].startswith("/v2/dst/img/blobs/uploads/")
