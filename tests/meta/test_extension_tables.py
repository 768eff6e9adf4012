"""Extensions' tables in the meta DB, on each backend: trust's keys and verdicts, written
through ``extension_write`` and read through ``extension_read`` with the same SQL."""

from __future__ import annotations

from ocireg.ext.trust.store import LayerVerdict, Material, TrustTables, layer_verdicts
from ocireg.meta.db import MetaDB


def test_trust_tables_round_trip(meta: MetaDB) -> None:
    assert layer_verdicts(meta, "r", "sig") == {}  # trust never ran: no table, untrusted
    tables = TrustTables(meta)
    key = Material("cosign", "", "d1", "PEM", "ecdsa-p256", 1.25)
    assert tables.add_material(key) is True
    assert tables.add_material(key) is False  # there already
    assert tables.material("cosign") == [key]
    trusted = LayerVerdict("r", "sig", 0, "subj", "cosign", True, "alice", "ok", 2.5)
    untrusted = LayerVerdict("r", "sig", 1, "subj", "cosign", False, "", "no key", None)
    tables.put_many([("r", "sig", [trusted, untrusted])])
    assert tables.verdicts_for_subject("r", "subj") == [trusted, untrusted]
    assert tables.signatures_of_tool("cosign", trusted=True) == [("r", "sig")]
    assert tables.lapsed(3.0) == [("r", "sig")]  # valid until 2.5
    assert layer_verdicts(meta, "r", "sig") == {0: (False, ""), 1: (False, "")}  # lapsed
    tables.forget("r", "sig")
    assert tables.evaluated("r") == set()
    assert tables.remove_material("cosign", "", "d1") is True
