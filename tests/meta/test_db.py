"""The meta DB on each backend: pushes, tags, deletions, batched pulls, rebuilds, preferences;
and what only the SQLite file has (a broken file, a file from an older release)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocireg.meta.db import MetaDB, NoSuchTable, SQLiteMetaDB
from ocireg.meta.records import ApiKey, ImageRecord, Platform
from tests.meta.conftest import Backend


def record(digest: str = "sha256:" + "a" * 64, **fields: object) -> ImageRecord:
    values: dict[str, object] = {"digest": digest, "media_type": "m", "size": 10}
    values.update(fields)
    return ImageRecord(**values)  # type: ignore[arg-type]


def test_push_tag_pull_and_delete(meta: MetaDB) -> None:
    db = meta
    image = record(platforms=[Platform("linux", "amd64")], annotations={"a": "b"})
    db.put_image("r", image, ["v1", "latest"], when=100.0, who="alice")
    assert db.repositories() == ["r"]
    assert db.tags("r") == {"latest": image.digest, "v1": image.digest}
    stored = db.image("r", image.digest)
    assert stored is not None
    assert (stored["pushed_at"], stored["pushed_by"], stored["downloads"]) == (100.0, "alice", 0)
    assert stored["platforms"] == [Platform("linux", "amd64")]
    assert stored["annotations"] == {"a": "b"}
    db.put_image("r", image, [], when=200.0, who="bob")  # pushed again: first push time kept
    assert db.image("r", image.digest)["pushed_at"] == 100.0  # type: ignore[index]
    db.add_pulls({("r", image.digest): (3, 300.0)})
    db.add_pulls({("r", image.digest): (2, 250.0)})
    stored = db.image("r", image.digest)
    assert stored is not None and (stored["downloads"], stored["last_pull"]) == (5, 300.0)
    db.remove_tag("r", "latest")
    assert db.tags("r") == {"v1": image.digest}
    db.remove_image("r", image.digest)
    assert db.image("r", image.digest) is None and db.tags("r") == {}


def test_rebuild_keeps_statistics_of_what_remains(backend: Backend) -> None:
    db = backend.open()
    kept, gone = record("sha256:" + "1" * 64), record("sha256:" + "2" * 64)
    db.put_image("r", kept, ["v1"], when=1.0, who="alice")
    db.put_image("r", gone, ["v2"], when=2.0, who="alice")
    db.add_pulls({("r", kept.digest): (7, 5.0)})
    new = record("sha256:" + "3" * 64, stored_at=42.0)
    db.replace_repository("r", [kept, new], {"v1": kept.digest, "v3": new.digest}, "g1", 9.0)
    assert db.stamp("r") == "g1"
    assert db.tags("r") == {"v1": kept.digest, "v3": new.digest}
    assert [image["digest"] for image in db.images("r")] == [kept.digest, new.digest]
    assert db.image("r", kept.digest)["downloads"] == 7  # type: ignore[index]
    assert db.image("r", new.digest)["pushed_at"] == 42.0  # type: ignore[index]
    db.close()
    reopened = backend.open()
    assert reopened.stamp("r") == "g1"
    reopened.drop_repository("r")
    assert reopened.repositories() == [] and reopened.images("r") == []


def test_a_record_the_db_cannot_hold_is_left_out_alone(meta: MetaDB) -> None:
    db = meta
    good, huge = record("sha256:" + "1" * 64), record("sha256:" + "2" * 64, content_size=2**64)
    broken = record("sha256:" + "3" * 64, created="\ud800")  # a lone surrogate: no UTF-8
    tags = {"good": good.digest, "huge": huge.digest, "broken": broken.digest}
    failed = db.replace_repository("r", [huge, good, broken], tags, "g1", 9.0)
    assert sorted(failed) == sorted([huge.digest, broken.digest])
    assert "OverflowError" in failed[huge.digest]
    assert [image["digest"] for image in db.images("r")] == [good.digest]
    assert db.tags("r") == {"good": good.digest}
    assert db.stamp("r") is None  # so that the next start reads the repository again
    db.close()


def test_stars_and_bookmarks_toggle_per_user(meta: MetaDB) -> None:
    db = meta
    assert db.toggle("alice", "r", "starred") is True
    assert db.toggle("bob", "r", "starred") is True
    assert db.toggle("alice", "r", "starred") is False
    assert db.toggle("alice", "r", "bookmarked") is True
    assert db.toggle("carol", "s", "starred") is True
    assert db.preferences("alice") == {"r": (False, True)}
    assert db.star_counts() == {"r": 1, "s": 1}


def test_api_keys_are_found_by_hash_listed_in_order_and_revoked(meta: MetaDB) -> None:
    def key(uuid: str, user: str = "alice") -> ApiKey:
        return ApiKey(uuid=uuid, user=user, label=uuid, scopes=("r",), groups=(),
                      created_at=1.0, expires_at=None, creator_ua="")  # fmt: skip

    for uuid in ("k2", "k1", "k3"):
        meta.add_api_key(f"hash-{uuid}", key(uuid))
    meta.add_api_key("hash-b", key("kb", user="bob"))
    assert [k.uuid for k in meta.api_keys("alice")] == ["k2", "k1", "k3"]  # as added
    meta.used_api_key("hash-k1", 5.5)
    found = meta.api_key("hash-k1")
    assert found is not None and (found.user, found.last_used) == ("alice", 5.5)
    assert meta.revoke_api_key("alice", "k1") is True
    assert meta.revoke_api_key("alice", "kb") is False  # bob's
    assert meta.api_key("hash-k1") is None and meta.api_key("hash-b") is not None


def test_a_broken_file_is_set_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    path.write_bytes(b"this is not a database" * 100)
    db = SQLiteMetaDB(path)
    assert db.repositories() == []
    assert len(list(tmp_path.glob("meta.db.broken-*"))) == 1


def test_stamps_advance_only_along_the_chain(meta: MetaDB) -> None:
    db = meta
    db.advance_stamp("r", None, "g1")
    db.advance_stamp("r", "g1", "g2")
    assert db.stamp("r") == "g2"
    db.advance_stamp("r", "g3", "g4")  # a gap: g2 -> g3 was never applied
    assert db.stamp("r") == "g2"
    db.advance_stamp("r", None, "g9")  # only a repository without a stamp starts a chain
    assert db.stamp("r") == "g2"


def test_the_catalog_index(backend: Backend) -> None:
    db = backend.open()
    assert not db.catalog_built()
    db.add_repository("b")  # created before the first sync: listed already
    db.add_repository("gone")
    db.set_catalog(["a", "c/d", "c"], ["b"])  # a walk that found no b (nor 'gone', made later)
    assert "gone" in db.catalog()
    db.set_catalog(["a", "c/d", "c"], ["gone"])
    assert db.catalog_built()
    assert db.catalog() == ["a", "c", "c/d"]  # b was not in storage any more
    db.add_repository("b")
    db.add_repository("b")
    assert db.catalog(after="a", limit=2) == ["b", "c"]
    assert db.catalog(after="c/d") == []
    assert db.catalog(limit=0) == []
    db.add_repository("B")  # byte order, whatever the database's locale
    assert db.catalog(limit=2) == ["B", "a"]
    db.remove_repository("B")
    again = backend.open()
    assert again.catalog_built() and again.catalog() == ["a", "b", "c", "c/d"]


def test_layer_sizes_and_history_are_kept(meta: MetaDB) -> None:
    db = meta
    entry = {"created": "", "created_by": "RUN x", "author": "", "comment": "",
             "empty_layer": False}  # fmt: skip
    image = record(layers=["sha256:" + "b" * 64], layer_sizes=[42], history=[entry])
    db.put_image("r", image, ["v1"], when=1.0, who="")
    stored = db.image("r", image.digest)
    assert stored is not None
    assert (stored["layer_sizes"], stored["history"]) == ([42], [entry])
    assert db.tag_digest("r", "v1") == image.digest and db.tag_digest("r", "v2") is None


def test_a_db_from_before_layer_sizes_gets_them_and_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    db = SQLiteMetaDB(path)
    db.put_image("r", record(), ["v1"], when=1.0, who="")
    db.advance_stamp("r", None, "g1")
    with db._write() as connection:  # the columns a meta.db of the first release lacks
        for column in ("layer_sizes", "history"):
            connection.execute(f"ALTER TABLE images DROP COLUMN {column}")
    db.close()
    reopened = SQLiteMetaDB(path)
    assert reopened.stamp("r") is None  # the next sync reads the repository again
    stored = reopened.image("r", record().digest)
    assert stored is not None and stored["layer_sizes"] is None
    reopened.put_image("r", record(layer_sizes=[7]), [], when=2.0, who="")
    assert reopened.image("r", record().digest)["layer_sizes"] == [7]  # type: ignore[index]


def test_bulky_columns_are_decoded_when_read(meta: MetaDB) -> None:
    db = meta
    image = record(layers=["sha256:" + "c" * 64], layer_sizes=[9], history=[])
    db.put_image("r", image, ["v1"], when=1.0, who="")
    row = db.image("r", image.digest)
    assert row is not None
    assert "layers" not in dict(row)  # not decoded yet
    assert "layers" in row and row["layers"] == ["sha256:" + "c" * 64]
    assert row.get("layer_sizes") == [9] and row.get("history") == []
    assert row.get("no such column") is None


def test_the_generation_moves_with_every_write_from_any_connection(backend: Backend) -> None:
    """What search's facts cache trusts to skip re-reading every repository's version."""
    writer = backend.open()
    reader = backend.reader()
    seen = [writer.generation(), reader.generation()]
    assert writer.generation() == seen[0] and reader.generation() == seen[1]  # reads: no move
    writer.put_image("a", record("sha256:" + "a" * 64), ["v1"], 1.0, "")
    assert writer.generation() != seen[0]  # its own commit
    assert reader.generation() != seen[1]  # another connection's commit
    seen = [writer.generation(), reader.generation()]
    writer.toggle("alice", "a", "starred")
    assert writer.generation() != seen[0] and reader.generation() != seen[1]


def test_rows_and_referrers_read_together_match_those_read_one_by_one(meta: MetaDB) -> None:
    db = meta
    subjects = [f"sha256:{i:064x}" for i in range(1200)]  # more than one IN list's worth
    for digest in subjects[:1100]:
        db.put_image("r", record(digest), [], when=1.0, who="")
    for i, subject in enumerate(subjects[:300:3]):
        for n in range(2):
            db.put_image("r", record(f"sha256:{10**6 + 2 * i + n:064x}", subject=subject), [],
                         when=1.0, who="")  # fmt: skip
    db.put_image("other", record(subjects[0]), [], when=1.0, who="")
    asked = [*subjects, "sha256:" + "f" * 64]
    together = db.images_of("r", asked)
    assert set(together) == set(subjects[:1100])
    assert all(together[d] == db.image("r", d) for d in subjects[:1100:97])
    referred = db.referrers_of("r", asked)
    assert set(referred) == set(asked)
    assert referred == {subject: db.referrers("r", subject) for subject in asked}
    assert sum(len(rows) for rows in referred.values()) == 200
    # what a backend without its own batch answers: the same
    assert MetaDB.images_of(db, "r", asked) == together
    assert MetaDB.referrers_of(db, "r", asked) == referred


def test_the_tags_whose_image_starts_with_a_layer(meta: MetaDB) -> None:
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    db = meta
    db.put_image("base", record("sha256:" + "b" * 64, layers=[first]), ["v1"], 1.0, "a")
    db.put_image(
        "app", record("sha256:" + "c" * 64, layers=[first, second]), ["v1", "v2"], 1.0, "a"
    )
    db.put_image("other", record("sha256:" + "d" * 64, layers=[second, first]), ["v1"], 1.0, "a")
    db.put_image("untagged", record("sha256:" + "e" * 64, layers=[first]), [], 1.0, "a")
    expected = [("app", "v1"), ("app", "v2"), ("base", "v1")]
    assert db.tagged_starting_with(first) == expected
    assert sorted(MetaDB.tagged_starting_with(db, first)) == expected  # any meta DB's way
    assert db.tagged_starting_with("sha256:" + "9" * 64) == []


def test_a_db_from_before_first_layers_gets_them_from_its_rows(backend: Backend) -> None:
    """The first-layer column that finds base images and dependents is filled from the layer
    lists already stored: no repository is read from storage again for it."""
    first = "sha256:" + "1" * 64
    db = backend.open()
    db.put_image("base", record("sha256:" + "b" * 64, layers=[first]), ["v1"], 1.0, "a")
    db.put_image("app", record("sha256:" + "c" * 64, layers=[first, "sha256:" + "2" * 64]),
                 ["v1"], 1.0, "a")  # fmt: skip
    db.put_image("empty", record("sha256:" + "e" * 64, layers=[]), ["v1"], 1.0, "a")
    db.advance_stamp("base", None, "g1")
    with db._write() as connection:  # type: ignore[attr-defined]  # as a DB before the column
        connection.execute("DROP INDEX images_by_first_layer")
        connection.execute("ALTER TABLE images DROP COLUMN first_layer")
    db.close()
    reopened = backend.open()
    assert reopened.tagged_starting_with(first) == [("app", "v1"), ("base", "v1")]
    assert reopened.stamp("base") == "g1"  # not read again
    again = backend.open()  # a second start finds the column there and leaves it
    assert again.tagged_starting_with(first) == [("app", "v1"), ("base", "v1")]


def test_blob_users_and_referrers(meta: MetaDB) -> None:
    blob, other = "sha256:" + "b" * 64, "sha256:" + "c" * 64
    uses = record("sha256:" + "1" * 64, layers=[blob])
    config = record("sha256:" + "2" * 64, config_digest=blob)
    neither = record("sha256:" + "3" * 64, layers=[other], subject=uses.digest)
    for image in (uses, config, neither):
        meta.put_image("r", image, [], when=1.0, who="")
    everything, users = meta.blob_users("r", blob)
    assert everything == {uses.digest, config.digest, neither.digest}
    assert sorted(users) == [uses.digest, config.digest]
    assert [row["digest"] for row in meta.referrers("r", uses.digest)] == [neither.digest]


def test_versions_move_with_each_change_to_a_repository(meta: MetaDB) -> None:
    meta.put_image("a", record(), ["v1"], when=1.0, who="")
    before = meta.versions()
    meta.remove_tag("a", "v1")
    after = meta.versions()
    assert after["a"] > before["a"]
    meta.toggle("alice", "b", "starred")
    assert meta.versions()["a"] == after["a"] and "b" in meta.versions()


def test_a_reader_cannot_write(backend: Backend) -> None:
    backend.open()  # creates the schema
    reader = backend.reader()
    with pytest.raises(reader.errors):
        reader.toggle("alice", "r", "starred")


def test_extension_tables_take_the_shared_sql(meta: MetaDB) -> None:
    with pytest.raises(NoSuchTable):
        meta.extension_read("SELECT * FROM ext_things")
    with meta.extension_write() as db:
        db.executescript(
            "CREATE TABLE IF NOT EXISTS ext_things (name TEXT PRIMARY KEY, "
            "n BIGINT NOT NULL, at DOUBLE PRECISION);"
        )
        db.execute("INSERT INTO ext_things VALUES (?, ?, ?)", ("a?b", 1, 0.1))
        db.executemany(
            "INSERT INTO ext_things VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET n = ext_things.n + excluded.n",
            [("a?b", 2, None), ("100%", 7, 1.5)],
        )
    rows = meta.extension_read("SELECT * FROM ext_things WHERE name LIKE '%?%' OR n > ?", 5)
    assert sorted((row["name"], row[1], row["at"]) for row in rows) == [
        ("100%", 7, 1.5), ("a?b", 3, 0.1)]  # fmt: skip
    assert dict(rows[0]).keys() == {"name", "n", "at"}


def test_schema_scripts_of_many_processes_at_once_do_not_collide(backend: Backend) -> None:
    # Every worker and instance creates the session and extension tables it needs at start
    # (CREATE ... IF NOT EXISTS), which race in PostgreSQL's catalogs unless taken in turn.
    import threading

    dbs = [backend.open() for _ in range(8)]
    start = threading.Barrier(len(dbs))
    failures: list[BaseException] = []

    def create(db: MetaDB) -> None:
        start.wait()
        try:
            for n in range(5):
                with db.extension_write() as tx:
                    tx.executescript(
                        f"CREATE TABLE IF NOT EXISTS race_{n} (a INTEGER, b TEXT);"
                        f"CREATE INDEX IF NOT EXISTS race_{n}_a ON race_{n} (a);"
                    )
        except BaseException as error:  # reported below, with every thread's
            failures.append(error)

    threads = [threading.Thread(target=create, args=(db,)) for db in dbs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
