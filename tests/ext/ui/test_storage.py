"""The operations page's storage figures, kept per repository (``ocireg.ext.ui.storage``): after
any mix of writes, what a page shows equals a fresh read of every repository."""

from __future__ import annotations

from ocireg.ext.ui import storage
from ocireg.ext.ui.storage import StorageFigures
from ocireg.meta.db import MetaDB, SQLiteMetaDB
from ocireg.meta.records import ImageRecord
from tests.oci import OCI_MANIFEST


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _image(n: int, layers: list[int], size: int = 100) -> ImageRecord:
    return ImageRecord(
        _digest(n),
        OCI_MANIFEST,
        size,
        layers=[_digest(10_000 + layer) for layer in layers],
        layer_sizes=[1000 * layer for layer in layers],
        content_size=size + sum(1000 * layer for layer in layers),
    )


def test_figures_follow_every_write_as_a_fresh_read_would() -> None:
    check_figures_follow_every_write(SQLiteMetaDB(":memory:"))


def check_figures_follow_every_write(db: MetaDB) -> None:
    """The figures after pushes, a deleted repository and a signature equal a fresh read's
    (also run on PostgreSQL by tests/meta/test_storage_figures.py)."""
    for r in range(20):
        for n in range(3):  # each repository's images share their first layer
            db.put_image(f"repo{r:02d}", _image(100 * r + n, [1, 2 + n + r]), [f"v{n}"], 1.0, "")
    kept = StorageFigures(db, top=5)
    blobs, biggest = kept.current()
    assert (blobs, biggest) == StorageFigures(db, top=5).current()
    first = next(row for row in blobs if row["repo"] == "repo00")
    # three manifests, the shared layer once, three own layers
    assert first == {"repo": "repo00", "blobs": 7, "bytes": 300 + 1000 + 2000 + 3000 + 4000}
    sizes = [100 + 1000 + 1000 * (2 + n + r) for r in range(20) for n in range(3)]
    assert [row["content_size"] for row in biggest] == sorted(sizes, reverse=True)[:5]
    # a push to one repository, one deleted, a signature (not an image): read again alone
    db.put_image("repo03", _image(9000, [1, 500]), ["big"], 2.0, "")
    db.drop_repository("repo05")
    signature = ImageRecord(_digest(9001), OCI_MANIFEST, 10**9, signature="cosign",
                            content_size=10**9, subject=_digest(300))  # fmt: skip
    db.put_image("repo03", signature, ["sig"], 2.0, "")
    blobs, biggest = kept.current()
    assert (blobs, biggest) == StorageFigures(db, top=5).current()
    assert "repo05" not in {row["repo"] for row in blobs}
    assert biggest[0]["tag"] == "big" and biggest[0]["repo"] == "repo03"


def test_many_changes_are_read_in_one_pass() -> None:
    db = SQLiteMetaDB(":memory:")
    for r in range(10):
        db.put_image(f"repo{r}", _image(r, [r + 1]), ["v1"], 1.0, "")
    kept = StorageFigures(db, top=3)
    kept.current()
    asked: list[str] = []
    original = db.extension_read

    def spy(query: str, *args: object) -> list[object]:
        asked.append(query)
        return original(query, *args)

    db.extension_read = spy  # type: ignore[method-assign]
    for r in range(5):  # half of them: more than storage.WHOLE
        db.put_image(f"repo{r}", _image(100 + r, [50 + r]), ["v2"], 2.0, "")
    assert storage.WHOLE < 5 / 10
    figures = kept.current()
    assert len(asked) == 2 and all(" IN (" not in query for query in asked)
    assert kept.current() == figures and len(asked) == 2  # nothing written: nothing read
    assert figures == StorageFigures(db, top=3).current()
