"""ocireg: a strict, spec-first OCI container registry."""

__version__ = "0.1.0"
