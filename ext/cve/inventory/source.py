"""Where an inventory's layers come from: an image manifest stored in the registry.

Only container images have a file system to list: a manifest whose config is an image
config and whose layers are all tar layers (OCI's, plain, gzip or zstd, distributable or not,
and Docker's). An index, or an artifact (a signature, an SBOM, a Helm chart), is no image.
"""

from __future__ import annotations

from typing import BinaryIO

from ocireg.digests import Digest
from ocireg.registry import layout
from ocireg.registry.manifests import Manifest
from ocireg.registry.store import Registry
from ocireg.storage.driver import PathNotFoundError

from .errors import InventoryError
from .scan import Opener

IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
IMAGE_LAYER_TYPES = frozenset(
    {
        *(
            f"application/vnd.oci.image.layer.{kind}v1.tar{suffix}"
            for kind in ("", "nondistributable.")
            for suffix in ("", "+gzip", "+zstd")
        ),
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)


def is_image(manifest: Manifest) -> bool:
    return (
        not manifest.is_index
        and manifest.config is not None
        and manifest.config.media_type in IMAGE_CONFIG_TYPES
        and all(layer.media_type in IMAGE_LAYER_TYPES for layer in manifest.layers)
    )


def _opener(registry: Registry, repo: str, digest: Digest) -> Opener:
    def open_layer() -> BinaryIO:
        try:
            return registry.driver.reader(layout.blob_file(repo, digest))
        except PathNotFoundError:
            # a foreign layer (``urls``) or one deleted since: the image cannot be listed
            raise InventoryError(f"layer {digest} is not in {repo}") from None

    return open_layer


def image_layers(registry: Registry, repo: str, manifest: Manifest) -> list[tuple[str, Opener]]:
    """The layers of an image, bottom first, each opened from storage when it is read.
    Raises ``InventoryError`` for a manifest that is no container image."""
    if not is_image(manifest):
        raise InventoryError("not a container image: an index or an artifact")
    return [(str(layer.digest), _opener(registry, repo, layer.digest)) for layer in manifest.layers]
