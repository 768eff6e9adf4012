"""Where everything lives in storage. The storage root is a tree of OCI image layouts.

::

    <root>/
      .ocireg/locks/<key>.lock          cross-process lock files (filesystem driver)
      <repo>/                           one OCI image layout per repository; repos nest (a, a/b)
        oci-layout                      {"imageLayoutVersion": "1.0.0"}
        index.json                      every manifest of the repo; a tagged one carries the
                                        annotation org.opencontainers.image.ref.name = <tag>,
                                        one descriptor per tag; an untagged one appears once
                                        with no ref.name
        blobs/<alg>/<encoded>           layers, configs and manifests, by digest
        .uploads/<session-id>           bytes of an upload in progress, moved into blobs/ on commit

Repository names cannot start with ``.``, so ``.ocireg`` and ``.uploads`` never collide with a
repository; ``names.RESERVED_COMPONENTS`` keeps nested repositories out of a parent's layout.
Because each repository is a plain OCI layout, ``skopeo inspect oci:<root>/<repo>:<tag>`` works
on the storage directory itself.
"""

from __future__ import annotations

from ocireg.digests import Digest
from ocireg.storage.driver import join

OCI_LAYOUT = "oci-layout"
INDEX_JSON = "index.json"
BLOBS = "blobs"
UPLOADS = ".uploads"
META_DIR = ".ocireg"
LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME = "org.opencontainers.image.ref.name"
# Entries of a repository directory that belong to its layout rather than to a child repository.
LAYOUT_ENTRIES = frozenset({OCI_LAYOUT, INDEX_JSON, BLOBS, UPLOADS})


def layout_file(repo: str) -> str:
    return join(repo, OCI_LAYOUT)


def index_file(repo: str) -> str:
    return join(repo, INDEX_JSON)


def blobs_dir(repo: str) -> str:
    return join(repo, BLOBS)


def blob_file(repo: str, digest: Digest) -> str:
    return join(repo, BLOBS, digest.algorithm, digest.encoded)


def uploads_dir(repo: str) -> str:
    return join(repo, UPLOADS)


def upload_file(repo: str, session_id: str) -> str:
    return join(repo, UPLOADS, session_id)
