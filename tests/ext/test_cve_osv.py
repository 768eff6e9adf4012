"""OSV records as the matcher keeps them: CVE names, severity, reference."""

from __future__ import annotations

import pytest

from ocireg.ext.cve.osv import NotOsv, parse
from ocireg.ext.cve.severity import severity
from tests.ext import osvdata


def test_an_advisory_is_reported_under_the_cves_it_names() -> None:
    assert parse(osvdata.DSA_5343_1).names == (
        "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286"
    )  # fmt: skip
    assert parse(osvdata.ALPINE_CVE_2023_0286).names == ("CVE-2023-0286",)  # from "upstream"
    no_cve = {"id": "OSV-2020-584", "modified": "2021-03-09T04:49:05.965964Z"}
    assert parse(no_cve).names == ("OSV-2020-584",)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (osvdata.GHSA_JFH8_C2JP_5V3Q, "CRITICAL"),  # CVSS 3.1 10.0
        (osvdata.GHSA_J8R2_6X86_Q33Q, "MEDIUM"),  # CVSS 3.1 6.1, GitHub says MODERATE too
        (osvdata.GHSA_R9P9_MRJM_926W, "MEDIUM"),  # CVSS 3.1 5.9
        (osvdata.PYSEC_2023_74, "UNKNOWN"),  # no vector, no rating
        (osvdata.DSA_5343_1, "UNKNOWN"),
    ],
)
def test_severity_comes_from_the_cvss_vector(record: dict[str, object], expected: str) -> None:
    assert severity(record) == expected


def test_without_a_vector_the_sources_rating_decides() -> None:
    record = {"id": "X", "database_specific": {"severity": "HIGH"}}
    assert severity(record) == "HIGH"
    ubuntu = {"id": "UBUNTU-CVE-2023-0286", "severity": [{"type": "Ubuntu", "score": "medium"}]}
    assert severity(ubuntu) == "MEDIUM"
    v4 = {"id": "Y", "severity": [{"type": "CVSS_V4", "score":
          "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]}  # fmt: skip
    assert severity(v4) == "CRITICAL"
    broken = {"id": "Z", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/nonsense"}]}
    assert severity(broken) == "UNKNOWN"


def test_reference_is_zots_choice() -> None:
    assert parse(osvdata.GO_2020_0015).reference == (
        "https://www.cve.org/CVERecord?id=CVE-2020-14040"
    )
    # several CVEs: the advisory's own page
    assert parse(osvdata.DSA_5343_1).reference == "https://www.debian.org/security/2023/dsa-5343"


def test_modified_times_compare_whatever_their_spelling() -> None:
    a = parse({"id": "A", "modified": "2023-06-05T01:13:00Z"}).modified
    b = parse({"id": "A", "modified": "2023-06-05T01:13:00.5+00:00"}).modified
    assert a < b


@pytest.mark.parametrize(
    ("spelled", "kept"),
    [
        ("2023-06-05T01:13:00Z", "2023-06-05T01:13:00.000000Z"),  # osv.dev's spellings
        ("2023-06-05T01:13:00.5Z", "2023-06-05T01:13:00.500000Z"),
        ("2021-03-09T04:49:05.965964Z", "2021-03-09T04:49:05.965964Z"),
        ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000000Z"),
        ("2023-06-05T01:13:00.1234567Z", "2023-06-05T01:13:00.123456Z"),  # and others
        ("2023-06-05T03:13:00+02:00", "2023-06-05T01:13:00.000000Z"),
        ("2023-06-05 01:13:00", "2023-06-05T01:13:00.000000Z"),
    ],
)
def test_modified_times_are_kept_in_one_spelling(spelled: str, kept: str) -> None:
    assert parse({"id": "A", "modified": spelled}).modified == kept


NOT_OSV = [[], {"modified": "2023-01-01T00:00:00Z"}, {"id": "A"}, {"id": "A", "modified": "x"}]
NOT_OSV += [  # no such moment, though spelled as osv.dev spells times
    {"id": "A", "modified": when}
    for when in ("2023-02-29T00:00:00Z", "2023-04-31T00:00:00Z", "2023-01-01T24:00:00Z")
]
NOT_OSV += [{"id": "A", "modified": "2023-01-01T23:59:60Z"}, {"id": "A", "modified": 2023}]


@pytest.mark.parametrize("document", NOT_OSV)
def test_what_is_not_an_osv_record_is_refused(document: object) -> None:
    with pytest.raises(NotOsv):
        parse(document)
