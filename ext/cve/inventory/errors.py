"""The one error the inventory raises: a layer it cannot read at all."""

from __future__ import annotations


class InventoryError(Exception):
    """A layer is not a tar (plain, gzip or zstd), or its stream breaks off.

    An inventory that silently skipped a layer would report an image as clean of what that
    layer installed, so the whole inventory fails instead.
    """
