"""Real OSV advisories, written down as data (IDs, aliases and affected ranges as published;
long texts shortened). Tests match packages against them and check each expected match and
each expected non-match."""

from __future__ import annotations

import copy
from typing import Any

# Debian's DSA for openssl in bullseye (Feb 2023); names the source package, as Debian does
DSA_5343_1: dict[str, Any] = {
    "id": "DSA-5343-1",
    "summary": "openssl - security update",
    "details": "Multiple security issues were discovered in OpenSSL.",
    "modified": "2023-02-07T00:00:00Z",
    "published": "2023-02-07T00:00:00Z",
    "aliases": ["CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286"],
    "affected": [
        {
            "package": {"ecosystem": "Debian:11", "name": "openssl"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u4"}],
                }
            ],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5343"}],
}

# Debian's DSA for openssl in bookworm (Oct 2023); 3.0.11-1~deb12u2 is bookworm-security's fix
DSA_5532_1: dict[str, Any] = {
    "id": "DSA-5532-1",
    "summary": "openssl - security update",
    "details": "Tony Battersby reported that incorrect cipher key and IV length processing "
    "could result in loss of confidentiality for some symmetric cipher modes.",
    "modified": "2023-10-24T00:00:00Z",
    "published": "2023-10-24T00:00:00Z",
    "aliases": ["CVE-2023-5363"],
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
                }
            ],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2023/dsa-5532"}],
}

# The OSV schema's own Debian example (wheezy)
DSA_3029_1: dict[str, Any] = {
    "id": "DSA-3029-1",
    "summary": "nginx - security update",
    "affected": [
        {
            "package": {"ecosystem": "Debian:7", "name": "nginx"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "1.2.1-2.2+wheezy3"}],
                }
            ],
        }
    ],
    "aliases": ["CVE-2014-3616"],
    "published": "2014-09-20T00:00:00Z",
    "modified": "2014-09-20T08:18:07Z",
    "details": "It was possible to reuse cached SSL sessions in unrelated contexts.",
    "references": [{"type": "ADVISORY", "url": "https://www.debian.org/security/2014/dsa-3029"}],
}

# requests' Proxy-Authorization leak (PyPA advisory database)
PYSEC_2023_74: dict[str, Any] = {
    "id": "PYSEC-2023-74",
    "modified": "2023-06-05T01:13:00Z",
    "published": "2023-05-26T18:15:00Z",
    "aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
    "details": "Requests is a HTTP library. Since Requests 2.3.0, Requests has been leaking "
    "Proxy-Authorization headers to destination servers when redirected to an HTTPS endpoint.",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}
            ],
        }
    ],
    "references": [
        {
            "type": "ADVISORY",
            "url": "https://github.com/psf/requests/security/advisories/GHSA-j8r2-6x86-q33q",
        }
    ],
}

# GitHub's advisory of the same CVE: one CVE in the answers, with the CVSS vector's severity
GHSA_J8R2_6X86_Q33Q: dict[str, Any] = {
    "id": "GHSA-j8r2-6x86-q33q",
    "modified": "2023-11-08T04:12:00Z",
    "published": "2023-05-22T20:36:32Z",
    "aliases": ["CVE-2023-32681", "PYSEC-2023-74"],
    "summary": "Unintended leak of Proxy-Authorization header in requests",
    "details": "Requests has been leaking Proxy-Authorization headers to destination servers.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}
            ],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2023-32681"}],
    "database_specific": {"severity": "MODERATE", "github_reviewed": True},
}

# The OSV schema's npm example
GHSA_R9P9_MRJM_926W: dict[str, Any] = {
    "schema_version": "1.2.0",
    "id": "GHSA-r9p9-mrjm-926w",
    "modified": "2021-03-08T16:02:43Z",
    "published": "2021-03-08T16:06:50Z",
    "aliases": ["CVE-2020-28498"],
    "summary": "Use of a Broken or Risky Cryptographic Algorithm",
    "details": "The npm package `elliptic` before version 6.5.4 are vulnerable to "
    "Cryptographic Issues via the secp256k1 implementation in elliptic/ec/key.js.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N"}],
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "elliptic"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "6.5.4"}]}],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2020-28498"}],
    "database_specific": {"cwe_ids": ["CWE-327"], "severity": "MODERATE", "github_reviewed": True},
}

# Go's vulnerability database: golang.org/x/text's infinite loop in UTF-16 decoding
GO_2020_0015: dict[str, Any] = {
    "id": "GO-2020-0015",
    "modified": "2023-06-12T18:45:41Z",
    "published": "2021-04-14T20:04:52Z",
    "aliases": ["CVE-2020-14040", "GHSA-5rcv-m4m3-hfh7"],
    "summary": "Infinite loop when decoding some inputs in golang.org/x/text",
    "details": "An attacker could provide a single byte to a UTF16 decoder instantiated with "
    "UseBOM or ExpectBOM to trigger an infinite loop.",
    "affected": [
        {
            "package": {"ecosystem": "Go", "name": "golang.org/x/text"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.3.3"}]}],
        }
    ],
    "references": [{"type": "FIX", "url": "https://go.dev/cl/238238"}],
}

# log4shell, as GitHub publishes it: three ranges
GHSA_JFH8_C2JP_5V3Q: dict[str, Any] = {
    "id": "GHSA-jfh8-c2jp-5v3q",
    "modified": "2024-04-03T21:04:29Z",
    "published": "2021-12-10T00:40:56Z",
    "aliases": ["CVE-2021-44228"],
    "summary": "Remote code injection in Log4j",
    "details": "Log4j2 JNDI features do not protect against attacker controlled LDAP endpoints.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.13.0"}, {"fixed": "2.15.0"}]}
            ],
        },
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.3.1"}]}
            ],
        },
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "2.4.0"}, {"fixed": "2.12.2"}]}
            ],
        },
    ],
    "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"}],
    "database_specific": {"severity": "CRITICAL", "github_reviewed": True},
}

# Alpine's secdb, as osv.dev publishes it: openssl 3.0.8-r0 fixes CVE-2023-0286 in v3.17
ALPINE_CVE_2023_0286: dict[str, Any] = {
    "id": "ALPINE-CVE-2023-0286",
    "modified": "2023-02-08T00:00:00Z",
    "published": "2023-02-08T00:00:00Z",
    "upstream": ["CVE-2023-0286"],
    "details": "There is a type confusion vulnerability relating to X.400 address processing "
    "inside an X.509 GeneralName.",
    "affected": [
        {
            "package": {"ecosystem": "Alpine:v3.17", "name": "openssl"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.8-r0"}]}
            ],
        }
    ],
}

ALL = [
    DSA_5343_1,
    DSA_5532_1,
    DSA_3029_1,
    PYSEC_2023_74,
    GHSA_J8R2_6X86_Q33Q,
    GHSA_R9P9_MRJM_926W,
    GO_2020_0015,
    GHSA_JFH8_C2JP_5V3Q,
    ALPINE_CVE_2023_0286,
]


def withdrawn(record: dict[str, Any], when: str) -> dict[str, Any]:
    """``record`` as its source publishes it once withdrawn (a later ``modified``)."""
    changed = copy.deepcopy(record)
    changed["withdrawn"] = when
    changed["modified"] = when
    return changed
