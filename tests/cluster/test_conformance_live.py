"""Our conformance suite, every workflow, strict schema, through a member that owns neither of
the suite's repositories: a cluster member is a whole registry to a client."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.members3 import owned_by, three_members
from tests.conformance.test_suite import ALL, conformance


def test_every_workflow_passes_through_a_member_that_owns_nothing_it_touches(
    tmp_path: Path,
) -> None:
    with three_members(tmp_path) as members:
        namespace, crossmount = owned_by(1, "conformance/test"), owned_by(2, "conformance/x")
        done = conformance(
            "--url", members[0].url, "--workflows", ALL, "--schema", "strict",
            "--namespace", namespace, "--crossmount-namespace", crossmount,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[-1] == "result: passed"
        assert not (members[0].root / namespace).exists()
        assert (members[1].root / namespace).exists()
        assert (members[2].root / crossmount).exists()
