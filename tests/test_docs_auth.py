"""docs/auth.md names each authentication example, and each of them loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocireg.config import load_config

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("auth-*.yaml"))


def test_each_method_has_an_example() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "auth-htpasswd.yaml",
        "auth-ldap.yaml",
        "auth-bearer.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_guide_names_the_example_and_it_loads(path: Path) -> None:
    assert f"docs/examples/{path.name}" in (DOCS / "auth.md").read_text()
    config = load_config(path)
    assert config.http.authenticating()


def test_the_abridged_htpasswd_example_agrees_with_the_file() -> None:
    config = load_config(DOCS / "examples" / "auth-htpasswd.yaml")
    assert config.http.auth is not None and config.http.auth.apikey
    assert config.http.auth.failDelay == 2
    assert config.http.accessControl is not None
    assert set(config.http.accessControl.repositories) == {"team/**", "public/**"}
