"""An OCI Distribution Specification conformance suite that runs against any registry URL.

Run it with ``ocireg conformance --url URL`` or, drop-in for the upstream suite, with the
upstream environment variables (``OCI_ROOT_URL``, ``OCI_TEST_PULL``, ...) and ``pytest``.
Every check names the section of the spec it enforces; every response is also validated against
``spec/openapi.yaml``.
"""
