"""The ``ocireg`` command's entry point (the console script and ``python -m ocireg``).

Starting a server imports a few hundred modules and builds the app: some hundred thousand
objects that all live as long as the process. The cyclic collector, left on meanwhile, walks
them again and again and frees next to nothing: about 8 % of a cold start (issue 13). It is off
from here until the app is built (``ocireg.server``) or, for every other command, until the
command line is parsed (``ocireg.cli``); both then call ``ocireg.heap.started``, which freezes
what start-up made out of later collections. Importing ``ocireg`` as a library changes nothing:
only this entry point turns the collector off.

pydantic looks for plugins (``pydantic`` entry points) through ``importlib.metadata`` when it
builds its first model: importing that module and reading every installed distribution's entry
points costs about 0.04 CPU s of every command. Where no distribution declares a pydantic
plugin, this entry point tells pydantic so through its own switch (``PYDANTIC_DISABLE_PLUGINS``,
unless already set): the answer is the same, only cheaper. ``importlib.metadata`` itself is
imported when something first uses it (see ``ocireg.unused``).

The methods of dataclasses are compiled once per machine, not at every start (see
``ocireg.dataclasscode``): also only through this entry point.
"""

from __future__ import annotations

import atexit
import gc
import os

from ocireg import dataclasscode, unused
from ocireg.entrypoints import entry_points

PYDANTIC_PLUGINS_SWITCH = "PYDANTIC_DISABLE_PLUGINS"


def _skip_pydantic_plugin_scan() -> None:
    if PYDANTIC_PLUGINS_SWITCH not in os.environ and not entry_points("pydantic"):
        os.environ[PYDANTIC_PLUGINS_SWITCH] = "__all__"  # what pydantic would have found
        unused.defer(("importlib.metadata",))


def main() -> int:
    gc.disable()
    if dataclasscode.install():  # before the libraries' dataclasses are defined
        atexit.register(dataclasscode.save)
    _skip_pydantic_plugin_scan()
    from ocireg.cli import main as run

    try:
        return run()
    finally:
        gc.enable()
