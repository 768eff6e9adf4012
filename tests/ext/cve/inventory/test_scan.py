"""What the scan keeps in memory: the files it wants, never the ones it streams past."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from ocireg.ext.cve.inventory import golang, inventory

from .images import File, layer_file

BIG = 96 * 1024 * 1024


def test_big_files_stream_past_in_bounded_memory(tmp_path: Path) -> None:
    """A 96 MiB data file, a 96 MiB executable that is an ELF but no Go binary, and a 96 MiB
    one with a Go build info at its end: the scan holds a chunk or two of each at a time."""
    data = tmp_path / "data.bin"
    with data.open("wb") as out:
        out.truncate(BIG)
    elf = tmp_path / "elf"
    with elf.open("wb") as out:
        out.write(b"\x7fELF")
        out.truncate(BIG)
    go = tmp_path / "go"
    info = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16) + b"\x08go1.22.3" + b"\x00"
    with go.open("wb") as out:
        out.write(b"\x7fELF")
        out.truncate(BIG)
        out.seek(BIG)
        out.write(info + bytes(64))
    entries = [
        File("srv/data.bin", source=data),
        File("usr/bin/elf", source=elf, mode=0o755),
        File("usr/bin/go", source=go, mode=0o755),
    ]
    image = [layer_file(entries, tmp_path / "layer.tar")]
    tracemalloc.start()
    try:
        found = inventory(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(p.name, p.version, p.path) for p in found.packages] == [
        ("stdlib", "1.22.3", "usr/bin/go")
    ]
    assert peak < 8 * golang.CHUNK, f"peak {peak / 2**20:.1f} MiB"
