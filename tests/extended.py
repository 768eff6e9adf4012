"""A registry with every built-in extension that needs no extra, and the example one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "tests.extensions.example:EXTENSION"
ALL_ON = {
    "extensions": {
        "mgmt": {},
        "search": {},
        "lint": {"mandatoryAnnotations": ["org.opencontainers.image.source"]},
        "quota": {"limitBytes": 4096},
        "trust": {"cosign": True, "notation": True},
        "clientreport": {},
    },
}


def example_env() -> dict[str, str]:
    return {"OCIREG_EXTENSIONS": EXAMPLE, "PYTHONPATH": str(ROOT)}
