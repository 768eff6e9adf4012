"""The ``ocireg`` command's entry point (the console script and ``python -m ocireg``).

Starting a server imports a few hundred modules and builds the app: some hundred thousand
objects that all live as long as the process. The cyclic collector, left on meanwhile, walks
them again and again and frees next to nothing: about 8 % of a cold start (issue 13). It is off
from here until the app is built (``ocireg.server``) or, for every other command, until the
command line is parsed (``ocireg.cli``); what start-up made is then frozen out of later
collections. Importing ``ocireg`` as a library changes nothing: only this entry point does it.
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


def started() -> None:
    """Start-up is over: collect from here on, leaving what start-up made out of it.

    Freezing without a collection first keeps start-up's own cyclic garbage for good: a few
    thousand objects (3,600 of 138,000 measured after an app build), a bounded one-off cost.
    A collection here would cost 40-90 ms on the way to the first answer, and enabling without
    freezing would make the first requests pay a full collection of the whole start-up heap."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
