"""docs/cve-inventory.md states each reader's size cap and the ecosystems: keep it true."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import java, scan
from ocireg.ext.cve.inventory.ecosystems import OS_ECOSYSTEMS

DOC = (Path(__file__).parents[4] / "docs" / "cve-inventory.md").read_text()
ROWS = {
    "dpkg": ("Debian/Ubuntu (dpkg)", scan.DPKG),
    "apk": ("Alpine (apk)", scan.APK),
    "rpm": ("RPM distributions", scan.RPM),
    "python": ("Python", scan.PYTHON),
    "npm": ("npm", scan.NPM),
    "java": ("Java", scan.JAVA),
}


@pytest.mark.parametrize("reader", sorted(ROWS))
def test_each_readers_cap_is_the_documented_one(reader: str) -> None:
    label, spec = ROWS[reader]
    row = next(line for line in DOC.splitlines() if line.startswith(f"| {label} |"))
    assert f"| {spec.limit // scan.MiB} MiB" in row
    if reader == "java":
        assert f"({java.NESTED_LIMIT // scan.MiB} MiB nested)" in row


def test_every_os_with_an_ecosystem_is_documented() -> None:
    table = DOC.split("| os-release `ID` | ecosystem |")[1].split("\n\n")[0]
    for os_id in OS_ECOSYSTEMS:
        assert f"`{os_id}`" in table, os_id
