"""The one table of repository-pattern cases, run against the implementation ocireg uses.

Most rows are doublestar v4's own match tests (the library zot matches repositories with);
the rest are the cases where another glob (wcmatch, or the simpler glob retention had) would
select other repositories, and ocireg's stricter refusals.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocireg.auth.identity import ANONYMOUS
from ocireg.auth.policy import AccessControl
from ocireg.auth.policyconfig import AccessControlConfig
from ocireg.cli import main
from ocireg.registry.retention import policy_for
from ocireg.repopattern import MAX_ALTERNATIVES, PatternError, check, matches
from ocireg.retentionconfig import RetentionConfig

# (pattern, name, matches)
TABLE = [
    # doublestar's documented cases
    ("*", "", True),
    ("*", "/", False),
    ("/*", "/", True),
    ("/*", "/debug/", False),
    ("/*", "//", False),
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("*/", "a/", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*", "axbxcxdxe", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a[!a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),  # noqa: RUF001 (doublestar's non-ASCII case)
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[-]", "-", True),
    ("[x-]", "x", True),
    ("[x-]", "-", True),
    ("[x-]", "z", False),
    ("[-x]", "x", True),
    ("[-x]", "-", True),
    ("[-x]", "a", False),
    ("[a-b-d]", "a", True),
    ("[a-b-d]", "b", True),
    ("[a-b-d]", "-", True),
    ("[a-b-d]", "c", False),
    ("[a-b-x]", "x", True),
    ("*x", "xxx", True),
    ("[abc]", "b", True),
    ("**", "", True),
    ("a/**", "a", True),
    ("a/**", "a/", True),
    ("a/**", "a/b", True),
    ("a/**", "a/b/c", True),
    ("**/c", "c", True),
    ("**/c", "b/c", True),
    ("**/c", "a/b/c", True),
    ("**/c", "a/b", False),
    ("**/c", "abcd", False),
    ("**/c", "a/abc", False),
    ("a/**/b", "a/b", True),
    ("a/**/c", "a/b/c", True),
    ("a/**/d", "a/b/c/d", True),
    ("a/\\**", "a/b/c", False),
    ("a/\\[*\\]", "a/bc", False),
    ("a//b/c", "a/b/c", False),
    ("a/b/c", "a/b//c", False),
    ("a/", "a", False),
    ("ab{c,d}", "abc", True),
    ("ab{c,d,*}", "abcde", True),
    ("a{,bc}", "a", True),
    ("a{,bc}", "abc", True),
    ("a/{b/c,c/b}", "a/b/c", True),
    ("a/{b/c,c/b}", "a/c/b", True),
    ("{a/{b,c},abc}", "a/b", True),
    ("{a/{b,c},abc}", "a/c", True),
    ("{a/{b,c},abc}", "abc", True),
    ("{a/{b,c},abc}", "a/b/c", False),
    ("{a/ab*}", "a/abc", True),
    ("{a/*}", "a/b", True),
    ("{a/abc}", "a/abc", True),
    ("{a/b,a/c}", "a/c", True),
    ("abc/**", "abc/b", True),
    ("**/abc", "abc", True),
    ("abc**", "abc/b", False),
    ("**/*.txt", "abc/【test】.txt", True),
    ("**/【*", "abc/【test】.txt", True),
    # the patterns of issue 22: access control and retention must agree on them
    ("team/{api,web}", "team/web", True),
    ("team/{api,web}", "team/db", False),
    ("app[0-9]", "app7", True),
    ("app[0-9]", "appx", False),
    ("prod/**", "prod", True),
    # where wcmatch (GLOBSTAR | BRACE) departs from doublestar
    ("app{1..3}", "app2", False),
    ("app{1..3}", "app1..3", True),
    ("abc**", "abcd", True),
    ("**/**/x", "x", True),
    ("a\\{b,c}", "a{b,c}", True),
    ("a[{]b,c}", "a{b,c}", True),
    ("a.b", "aXb", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), TABLE)
def test_the_table(pattern: str, name: str, expected: bool) -> None:
    assert matches(check(pattern), name) is expected


@pytest.mark.parametrize(
    ("pattern", "fault"),
    [
        # doublestar's ErrBadPattern cases
        ("[]a]", "empty '[]'"),
        ("\\", "ends with an escape"),
        ("[", "unclosed '['"),
        ("[^", "unclosed '['"),
        ("[^bc", "unclosed '['"),
        ("a[", "unclosed '['"),
        ("ad[", "unclosed '['"),
        ("ab{c,d}[", "unclosed '['"),
        # and ocireg's
        ("a{b", "unclosed '{'"),
        ("{a,{b}", "unclosed '{'"),
        ("[z-a]", "range z-a is reversed"),
        ("[!]", "empty '[]'"),
        ("a/[b\\", "ends with an escape"),
        ("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}", f"more than {MAX_ALTERNATIVES}"),
    ],
)
def test_malformed_patterns_are_refused(pattern: str, fault: str) -> None:
    with pytest.raises(PatternError, match=re.escape(fault)) as refused:
        check(pattern)
    assert repr(pattern) in str(refused.value)


def test_access_control_and_retention_select_the_same_repositories() -> None:
    # issue 22: one pattern, one set of repositories, wherever the pattern is written
    for pattern, name, expected in TABLE:
        access = AccessControl(
            AccessControlConfig.model_validate(
                {"repositories": {pattern: {"anonymousPolicy": ["read"]}}}
            ),
            authenticating=True,
        )
        retention = RetentionConfig.model_validate({"policies": [{"repositories": [pattern]}]})
        assert access.allows(ANONYMOUS, "read", name) is expected, (pattern, name)
        assert (policy_for(retention, name) is not None) is expected, (pattern, name)


def test_verify_refuses_malformed_patterns_with_their_key_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "storage:\n  rootDirectory: /d\n  retention:\n    policies:\n"
        '      - repositories: ["ok/**", "team/{api,web"]\n'
        "  subPaths:\n    /a:\n      rootDirectory: /e\n      retention:\n        policies:\n"
        '          - repositories: ["a/[z-a]"]\n'
        'http:\n  accessControl:\n    repositories:\n      "app[": {anonymousPolicy: [read]}\n'
    )
    assert main(["verify", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: storage.retention.policies.0.repositories.1: Value error, "
        "pattern 'team/{api,web': unclosed '{'",
        f"{path}: storage.subPaths./a.retention.policies.0.repositories.0: Value error, "
        "pattern 'a/[z-a]': range z-a is reversed",
        f"{path}: http.accessControl.repositories.app[: Value error, pattern 'app[': unclosed '['",
    ]
