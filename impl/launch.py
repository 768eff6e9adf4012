"""The ``ocireg`` command's entry point (the console script and ``python -m ocireg``).

Starting a server imports a few hundred modules and builds the app: some hundred thousand
objects that all live as long as the process. The cyclic collector, left on meanwhile, walks
them again and again and frees next to nothing: about 8 % of a cold start (issue 13). It is off
from here until the app is built (``ocireg.server``) or, for every other command, until the
command line is parsed (``ocireg.cli``); both then call ``ocireg.heap.started``, which freezes
what start-up made out of later collections. Importing ``ocireg`` as a library changes nothing:
only this entry point turns the collector off.
"""

from __future__ import annotations

import gc


def main() -> int:
    gc.disable()
    from ocireg.cli import main as run

    try:
        return run()
    finally:
        gc.enable()
