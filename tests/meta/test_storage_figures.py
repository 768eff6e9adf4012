"""The UI operations page's storage figures on both meta DB engines: the query that expands
each image's layer list is spelled per engine (``ocireg.ext.ui.storage``)."""

from __future__ import annotations

from ocireg.meta.db import MetaDB
from tests.ext.ui.test_storage import check_figures_follow_every_write


def test_figures_follow_every_write_on_each_engine(meta: MetaDB) -> None:
    check_figures_follow_every_write(meta)
