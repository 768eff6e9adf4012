"""``python -m tests.s3limits serve CONFIG``: ``ocireg serve`` with the S3 driver's time
limits set from the environment, so a test can reach them quickly:

- ``OCIREG_TEST_S3_BODY_TIMEOUT``: seconds a relayed body waits for its next byte
  (``ocireg.storage.s3.BODY_READ_TIMEOUT``, 30 s): a stalled S3 ends the pull;
- ``OCIREG_TEST_S3_QUICK_TIMEOUT``: seconds any other request waits for its answer's next
  byte (``ocireg.storage.s3.QUICK_READ_TIMEOUT``, 30 s).

Kept out of the registry's code: it sets the constants from outside."""

from __future__ import annotations

import os
import sys

from ocireg.cli import main
from ocireg.storage import s3

BODY_TIMEOUT = "OCIREG_TEST_S3_BODY_TIMEOUT"
QUICK_TIMEOUT = "OCIREG_TEST_S3_QUICK_TIMEOUT"

if __name__ == "__main__":
    if BODY_TIMEOUT in os.environ:
        s3.BODY_READ_TIMEOUT = float(os.environ[BODY_TIMEOUT])
    if QUICK_TIMEOUT in os.environ:
        s3.QUICK_READ_TIMEOUT = float(os.environ[QUICK_TIMEOUT])
    raise SystemExit(main(sys.argv[1:]))
