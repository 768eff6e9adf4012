"""``python -m tests.s3timeouts serve CONFIG``: ``ocireg serve`` whose wait for the next byte of
a spliced S3 body (``ocireg.storage.s3.BODY_READ_TIMEOUT``, 300 s) is the seconds in
``OCIREG_TEST_S3_BODY_TIMEOUT``, so a test can see a stalled S3 end a pull. Kept out of the
registry's code: it sets the constant from outside."""

from __future__ import annotations

import os
import sys

from ocireg.cli import main
from ocireg.storage import s3

BODY_TIMEOUT = "OCIREG_TEST_S3_BODY_TIMEOUT"

if __name__ == "__main__":
    s3.BODY_READ_TIMEOUT = float(os.environ[BODY_TIMEOUT])
    raise SystemExit(main(sys.argv[1:]))
