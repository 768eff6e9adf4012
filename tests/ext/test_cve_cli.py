"""``ocireg cve update``: what it prints, and how it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocireg.cli import main
from ocireg.ext.cve.store import CveStore
from tests.ext import osvdata


def _config(tmp_path: Path, cve: dict[str, object] | None = None) -> Path:
    path = tmp_path / "config.json"
    extensions = {"search": {"cve": cve}} if cve is not None else {}
    path.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "data")},
                                "extensions": extensions}))  # fmt: skip
    return path


def test_update_imports_into_the_roots_meta_db_and_says_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "osv"
    export.mkdir()
    for record in osvdata.ALL:
        (export / f"{record['id']}.json").write_text(json.dumps(record))
    (export / "notes.json").write_text('{"title": "not OSV"}')
    config = _config(tmp_path, {"sources": [str(export)]})  # the configured source, no --from
    assert main(["cve", "update", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{export}: {len(osvdata.ALL)} stored (0 withdrawn), 0 unchanged, 1 rejected",
        "0 scanned image(s) matched again",
    ]
    assert "notes.json: an OSV record is a JSON object with an id" in err
    assert main(["cve", "update", str(config), "--from", str(export)]) == 0
    assert f"0 stored (0 withdrawn), {len(osvdata.ALL)} unchanged" in capsys.readouterr().out
    store = CveStore.reader(tmp_path / "data" / ".ocireg" / "meta.db")
    assert store.advisory_count() == len(osvdata.ALL)
    store.close()


def test_update_refuses_without_a_source_or_with_an_unreadable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    assert main(["cve", "update", str(config)]) == 2
    assert "give --from PATH|URL" in capsys.readouterr().err
    assert main(["cve", "update", str(config), "--from", str(tmp_path / "missing")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
