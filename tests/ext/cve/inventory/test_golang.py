"""Go binaries: real ones from this machine (docker-registry, a Debian package, and terraform
when present), and build info written by the test to pin the module line rules."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import golang, inventory
from ocireg.ext.cve.packages import Package
from tests import tools

from .images import File, layer, layer_file

MAGIC = b"\xff Go buildinf:"


def docker_registry() -> Path:
    return Path(tools.require_binary("docker-registry", "apt-get install docker-registry"))


def built_with_go(package: str) -> str:
    """The Go release Debian built a package with, from its Built-Using field."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Built-Using}", package], capture_output=True, text=True
    )
    found = re.search(r"golang-1\.\d+ \(= ([\d.]+)-", out.stdout)
    if found is None:
        pytest.skip(f"dpkg does not say which Go built {package}")
    return found[1]


def go_packages(binary: Path, tmp_path: Path, mode: int = 0o755) -> list[Package]:
    entry = File("usr/bin/" + binary.name, source=binary, mode=mode)
    return list(inventory([layer_file([entry], tmp_path / "layer.tar")]).packages)


def test_the_go_release_a_debian_binary_was_built_with(tmp_path: Path) -> None:
    binary = docker_registry()
    found = go_packages(binary, tmp_path)
    expected = built_with_go("docker-registry")
    assert [(p.ecosystem, p.name, p.version) for p in found] == [("Go", "stdlib", expected)]
    assert found[0].purl == f"pkg:golang/stdlib@{expected}"
    assert found[0].path == "usr/bin/docker-registry"


def test_a_binary_without_its_execute_bit_is_not_read(tmp_path: Path) -> None:
    assert go_packages(docker_registry(), tmp_path, mode=0o644) == []


def test_an_elf_binary_that_is_not_go_has_no_build_info(tmp_path: Path) -> None:
    ls = Path(shutil.which("ls") or "/bin/ls")
    assert MAGIC not in ls.read_bytes()
    assert go_packages(ls, tmp_path) == []


def test_the_magic_split_across_chunks_is_still_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = docker_registry()
    whole = go_packages(binary, tmp_path)
    at = binary.read_bytes().find(MAGIC)
    for split in (at + 5, at + 20, at + 40):  # in the magic, its header, its strings
        monkeypatch.setattr(golang, "CHUNK", split)
        assert go_packages(binary, tmp_path) == whole


def build_info(go_version: bytes, info: bytes, flags: int = 2) -> bytes:
    def varint(value: int) -> bytes:
        out = b""
        while value >= 0x80:
            out += bytes([value & 0x7F | 0x80])
            value >>= 7
        return out + bytes([value])

    header = MAGIC + bytes([8, flags]) + bytes(16)
    framed = golang.MODINFO_START + info + golang.MODINFO_END
    body = header + varint(len(go_version)) + go_version + varint(len(framed)) + framed
    return b"\x7fELF" + bytes(8188) + body + bytes(4096)


MODINFO = (
    b"path\texample.com/app\n"
    b"mod\texample.com/app\t(devel)\t\n"
    b"dep\tgolang.org/x/net\tv0.17.0\th1:pCy=\n"
    b"dep\tgithub.com/gin-gonic/gin\tv1.9.0\th1:OjyF=\n"
    b"=>\tgithub.com/fork/gin\tv1.9.1\th1:4id=\n"
    b"dep\tgithub.com/local/thing\tv1.2.0\t\n"
    b"=>\t../thing\t\t\n"
    b"build\tGOOS=linux\n"
)


def test_module_lines_as_go_version_m_prints_them() -> None:
    """Dependencies as replaced (a replacement is what was built), a local replacement and a
    (devel) main module dropped: neither has a version an advisory could name."""
    blob = build_info(b"go1.21.5", MODINFO)
    found = inventory([layer([File("app", blob, mode=0o755)])]).packages
    assert [(p.name, p.version, p.purl) for p in found] == [
        ("stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5"),
        ("golang.org/x/net", "0.17.0", "pkg:golang/golang.org/x/net@v0.17.0"),
        ("github.com/fork/gin", "1.9.1", "pkg:golang/github.com/fork/gin@v1.9.1"),
    ]


def test_build_info_before_go_1_18_is_not_guessed() -> None:
    blob = build_info(b"go1.16.15", MODINFO, flags=0)
    assert inventory([layer([File("app", blob, mode=0o755)])]).packages == ()


TERRAFORM = Path("/usr/local/bin/terraform")


@pytest.mark.slow
def test_a_big_module_binary(tmp_path: Path) -> None:
    """Terraform (90 MB, hundreds of modules), where this machine has it."""
    if not TERRAFORM.is_file():
        pytest.skip("no terraform binary on this machine")
    found = go_packages(TERRAFORM, tmp_path)
    names = {p.name: p for p in found}
    assert len(found) > 100
    assert "github.com/hashicorp/hcl/v2" in names
    assert "github.com/hashicorp/terraform" not in names  # its main module is (devel)
    assert all(p.ecosystem == "Go" and p.version and p.version[0].isdigit() for p in found)


def test_a_build_info_claiming_huge_strings_is_not_read_into_memory() -> None:
    """A varint length of 2**40 is refused at once, not waited for chunk after chunk."""
    huge = b"\x80\x80\x80\x80\x80\x20"  # 2**40 as a uvarint
    blob = b"\x7fELF" + bytes(8188) + MAGIC + bytes([8, 2]) + bytes(16) + huge
    assert inventory([layer([File("app", blob + bytes(64), mode=0o755)])]).packages == ()
    stream = io.BytesIO(blob + bytes(20 * golang.CHUNK))
    assert golang.build_info(stream) is None
    assert stream.tell() == golang.CHUNK  # the first chunk, and nothing more
