"""The suite's settings: the upstream conformance suite's environment variables, and ours."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

import pytest

WORKFLOWS = {
    "pull": "OCI_TEST_PULL",
    "push": "OCI_TEST_PUSH",
    "discovery": "OCI_TEST_CONTENT_DISCOVERY",
    "management": "OCI_TEST_CONTENT_MANAGEMENT",
    "main": "OCI_TEST_SPEC_MAIN",  # ours: the spec's main-branch additions, opt-in
    "clients": "OCI_TEST_CLIENTS",  # ours: oras, skopeo and Notary signatures, opt-in
    "fuzz": "OCI_TEST_FUZZ",  # ours: schemathesis against spec/openapi.yaml, opt-in
}
WORKFLOW_TITLES = {
    "pull": "Pull",
    "push": "Push",
    "discovery": "Content Discovery",
    "management": "Content Management",
    "main": "Spec main branch (opt-in)",
    "clients": "Real clients (opt-in)",
    "fuzz": "Fuzzing (opt-in)",
}
SCHEMA_MODES = ("strict", "warn", "off")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _tristate(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


@dataclass(frozen=True)
class Settings:
    root_url: str
    namespace: str
    crossmount_namespace: str
    username: str | None
    password: str | None
    workflows: frozenset[str]
    automatic_crossmount: bool | None
    report_dir: str | None
    debug: bool
    schema: str
    tls_verify: bool = True
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @classmethod
    def from_env(cls) -> Settings:
        namespace = os.environ.get("OCI_NAMESPACE") or "oci-conformance/test"
        schema = os.environ.get("OCI_SCHEMA", "warn").strip().lower()
        if schema not in SCHEMA_MODES:
            raise ValueError(f"OCI_SCHEMA must be one of {', '.join(SCHEMA_MODES)}, not {schema!r}")
        return cls(
            root_url=os.environ.get("OCI_ROOT_URL", "").rstrip("/"),
            namespace=namespace,
            crossmount_namespace=os.environ.get("OCI_CROSSMOUNT_NAMESPACE")
            or f"{namespace}-crossmount",
            username=os.environ.get("OCI_USERNAME") or None,
            password=os.environ.get("OCI_PASSWORD") or None,
            workflows=frozenset(name for name, env in WORKFLOWS.items() if _flag(env)),
            automatic_crossmount=_tristate("OCI_AUTOMATIC_CROSSMOUNT"),
            report_dir=os.environ.get("OCI_REPORT_DIR") or None,
            debug=_flag("OCI_DEBUG"),
            schema=schema,
            tls_verify=_tristate("OCI_TLS_VERIFY") is not False,
        )


SETTINGS_KEY = pytest.StashKey[Settings]()
