"""ocireg: a strict, spec-first OCI container registry."""

import warnings

__version__ = "0.1.0"

# connexion imports starlette.testclient at import time, which newer starlette answers with a
# deprecation warning on every start; it concerns connexion's test helpers, never our server.
warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
