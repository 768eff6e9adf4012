from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from pydantic import ValidationError

from ocireg.auth import htpasswd
from ocireg.auth.htpasswd import HtpasswdConfig, HtpasswdError, HtpasswdFile, sha_crypt
from tests.tools import require_binary

# Ulrich Drepper's SHA-crypt specification, its test vectors: (setting, password, hash).
SPEC_VECTORS = [
    (
        "$5$saltstring",
        "Hello world!",
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    ),
    (
        "$5$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "$5$rounds=5000$toolongsaltstring",
        "This is just a test",
        "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
    ),
    (
        "$5$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
    ),
    (
        "$5$rounds=77777$short",
        "we have a short salt string but not a short password",
        "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/",
    ),
    (
        "$5$rounds=123456$asaltof16chars..",
        "a short string",
        "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD",
    ),
    (
        "$5$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "$6$saltstring",
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    (
        "$6$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "$6$rounds=5000$toolongsaltstring",
        "This is just a test",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "$6$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
    ),
    (
        "$6$rounds=77777$short",
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0",
    ),
    (
        "$6$rounds=123456$asaltof16chars..",
        "a short string",
        "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1",
    ),
    (
        "$6$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
]


def bcrypt_hash(password: str, prefix: str = "2b") -> str:
    """A bcrypt hash at the lowest cost (tests need not be slow), as htpasswd -B writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"${prefix}${hashed[4:]}"


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def rewrite(path: Path, *lines: str) -> None:
    """Change the file where it is (same inode), its mtime moved on: a rewrite within one tick of
    the file system's clock would otherwise look unchanged when the size is the same."""
    before = path.stat().st_mtime_ns
    write(path, *lines)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ocireg.auth"]


def warnings(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [event for event in events(caplog) if event["level"] == "warn"]


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes each bcrypt or SHA-crypt check was made against, in order."""
    seen: list[bytes] = []
    real_checkpw, real_sha_crypt = bcrypt.checkpw, htpasswd.sha_crypt

    def checkpw(password: bytes, hashed: bytes) -> bool:
        seen.append(hashed)
        return real_checkpw(password, hashed)

    def spy_sha_crypt(password: bytes, setting: bytes) -> bytes:
        seen.append(setting)
        return real_sha_crypt(password, setting)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    monkeypatch.setattr(htpasswd, "sha_crypt", spy_sha_crypt)
    return seen


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The time HtpasswdFile sees; tests move it on by hand."""
    now = [1000.0]
    monkeypatch.setattr(htpasswd, "_now", lambda: now[0])
    yield now


def live(path: Path) -> HtpasswdFile:
    """An HtpasswdFile that looks at its file on every call."""
    users = HtpasswdFile(path)
    users.check_interval = 0
    return users


# --- SHA-crypt -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "password", "expected"), SPEC_VECTORS)
def test_sha_crypt_matches_the_spec_vectors(setting: str, password: str, expected: str) -> None:
    assert sha_crypt(password.encode(), setting.encode()).decode() == expected
    # The whole hash is a setting too: that is how a stored hash is checked.
    assert sha_crypt(password.encode(), expected.encode()).decode() == expected


@pytest.mark.parametrize("algorithm", ["5", "6"])
@pytest.mark.parametrize("rounds", [None, 1000, 5000, 12345])
@pytest.mark.parametrize(
    "password",
    ["pw", "x" * 32, "x" * 64, "x" * 65, "päss wörd:with$odd chars", "y" * 200],
)
def test_sha_crypt_matches_openssl(algorithm: str, rounds: int | None, password: str) -> None:
    openssl = require_binary("openssl", "apt-get install openssl")
    args = [openssl, "passwd", f"-{algorithm}", "-stdin"]
    salt = ""
    if rounds is not None:  # else openssl picks a random salt of 16 and the default rounds
        salt = f"rounds={rounds}$"
        args += ["-salt", f"{salt}Ab3./xyZ"]
    hashed = subprocess.run(
        args, input=password.encode(), capture_output=True, check=True
    ).stdout.strip()
    assert hashed.startswith(f"${algorithm}${salt}".encode())
    assert sha_crypt(password.encode(), hashed) == hashed
    assert sha_crypt(password.encode() + b"!", hashed) != hashed


def test_sha_crypt_refuses_other_settings() -> None:
    with pytest.raises(ValueError):
        sha_crypt(b"pw", b"$1$salt")


# --- Checking passwords --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["2a", "2b", "2y"])
def test_bcrypt(tmp_path: Path, prefix: str) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('s3cret', prefix)}"))
    assert users.verify("alice", "s3cret")
    assert not users.verify("alice", "s3cret ")
    assert not users.verify("alice", "")
    assert users.users() == ["alice"]


def test_bcrypt_reads_72_bytes_of_a_password_as_zot_does(tmp_path: Path) -> None:
    long = "p" * 72
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash(long)}"))
    assert users.verify("alice", long + "ignored")
    assert not users.verify("alice", long[:71])


@pytest.mark.parametrize(("setting", "password", "expected"), SPEC_VECTORS)
def test_sha_crypt_hashes(tmp_path: Path, setting: str, password: str, expected: str) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"bob:{expected}"))
    assert users.verify("bob", password)
    assert not users.verify("bob", password + "x")
    assert not users.verify("bob", password[:-1])
    assert users.users() == ["bob"]


def test_sha_crypt_refuses_passwords_over_512_bytes(tmp_path: Path, checks: list[bytes]) -> None:
    longest = "p" * 512
    hashed = sha_crypt(longest.encode(), b"$5$saltstring").decode()
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"bob:{hashed}"))
    assert users.verify("bob", longest)
    checks.clear()
    # Refused before any hashing: the work is quadratic in the length (here 100 MB of SHA-256).
    assert not users.verify("bob", longest + "p" * 9_500)
    assert checks == []


@pytest.mark.parametrize("scheme", [b"$5$", b"$6$"])
def test_sha_crypt_takes_no_password_with_a_nul_byte(tmp_path: Path, scheme: bytes) -> None:
    hashed = sha_crypt(b"secret", scheme + b"saltstring").decode()
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"bob:{hashed}"))
    assert users.verify("bob", "secret")
    assert not users.verify("bob", "secret\0")
    assert not users.verify("bob", "\0")
    assert not users.verify("nobody", "secret\0")  # an unknown user's dummy check too


def test_openssl_hashes_in_a_file(tmp_path: Path) -> None:
    openssl = require_binary("openssl", "apt-get install openssl")
    lines = []
    for name, args in {
        "five": ["-5"],
        "six": ["-6"],
        "fiverounds": ["-5", "-salt", "rounds=2000$n0tRand0m"],
        "sixrounds": ["-6", "-salt", "rounds=3000$n0tRand0m"],
    }.items():
        password = f"{name}-Pässword"
        hashed = subprocess.run(
            [openssl, "passwd", *args, "-stdin"],
            input=password.encode(),
            capture_output=True,
            check=True,
        ).stdout.decode()
        lines.append(f"{name}:{hashed.strip()}")
    users = HtpasswdFile(write(tmp_path / "htpasswd", *lines))
    assert users.users() == ["five", "fiverounds", "six", "sixrounds"]
    for name in users.users():
        assert users.verify(name, f"{name}-Pässword")
        assert not users.verify(name, f"{name}-Password")
        assert not users.verify(name, "six-Pässword" if name != "six" else "five-Pässword")


UNSUPPORTED = {
    "sha1": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",  # "password"
    "apr1": "$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.",
    "md5": "$1$salt$qJH7.N4xYta3aEG/dfqo/0",  # "password"
    "des": "saHW9GdxihkGQ",
    "plain": "password",
    "empty": "",
    "badbcrypt": "$2b$10$tooShort",
    "lowrounds": "$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    "shortsha": "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl",
    # a salt outside crypt's base64 alphabet, which no crypt(3) writes
    "oddsalt": "$5$salt-string$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
}


def test_unsupported_formats_never_verify_and_are_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = bcrypt_hash("password")
    path = write(tmp_path / "htpasswd", f"ok:{good}", *(f"{u}:{h}" for u, h in UNSUPPORTED.items()))
    users = HtpasswdFile(path)
    for user, hashed in UNSUPPORTED.items():
        assert not users.verify(user, "password"), user
        assert not users.verify(user, hashed), user
    assert users.users() == ["ok"]
    assert users.verify("ok", "password")
    warned = [event["user"] for event in warnings(caplog)]
    assert sorted(warned) == sorted(UNSUPPORTED)
    formats = {event["user"]: event["format"] for event in warnings(caplog)}
    assert formats["sha1"] == "SHA-1 ({SHA})"
    assert formats["apr1"] == "Apache MD5 ($apr1$)"
    # Neither the hashes nor the plain-text password may reach the log.
    for hashed in [good, *UNSUPPORTED.values()]:
        if hashed:
            assert hashed not in caplog.text


def test_unknown_users_are_rejected(tmp_path: Path) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}"))
    assert not users.verify("bob", "pw")
    assert not users.verify("", "pw")
    assert not users.verify("alice\n", "pw")
    assert not users.verify("Alice", "pw")


def test_an_unknown_user_costs_a_check_like_the_files(tmp_path: Path, checks: list[bytes]) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}", "old:{SHA}x"))
    assert not users.verify("bob", "pw")
    assert not users.verify("old", "pw")  # an unusable hash is no quicker to turn down
    assert len(checks) == 2
    # Against a hash of the file's own cost, not a cheaper or dearer one.
    assert all(hashed.startswith(b"$2b$04$") for hashed in checks)
    assert bcrypt_hash("pw").encode() not in checks


def test_an_unknown_user_of_a_sha_crypt_file_costs_a_sha_crypt(
    tmp_path: Path, checks: list[bytes]
) -> None:
    _, _, hashed = SPEC_VECTORS[9]  # $6$rounds=5000$
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{hashed}"))
    checks.clear()  # making the dummy, once a process, is no check
    assert not users.verify("bob", "pw")
    assert len(checks) == 1
    assert checks[0].startswith(b"$6$rounds=5000$")
    assert checks[0] != hashed.encode()


def test_non_utf8_passwords_are_rejected(tmp_path: Path) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}"))
    assert not users.verify("alice", "\ud800")


# --- The file ------------------------------------------------------------------------------------


def test_comments_blank_and_malformed_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "htpasswd",
        "# users of the registry",
        "",
        "   ",
        "justAPassword123",
        f"alice:{bcrypt_hash('pw')}",
        ":nouser",
        "  # indented comment",
        f"bob:{SPEC_VECTORS[0][2]}\r",
    )
    users = HtpasswdFile(path)
    assert users.users() == ["alice", "bob"]
    assert users.verify("alice", "pw")
    assert users.verify("bob", "Hello world!")
    assert [(event["line"], event["path"]) for event in warnings(caplog)] == [
        (4, str(path)),
        (6, str(path)),
    ]
    assert "justAPassword123" not in caplog.text
    assert "nouser" not in caplog.text


def test_a_user_listed_twice_gets_the_later_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "htpasswd", f"alice:{bcrypt_hash('one')}", f"alice:{bcrypt_hash('two')}"
    )
    users = HtpasswdFile(path)
    assert users.verify("alice", "two")
    assert not users.verify("alice", "one")
    assert [(event["user"], event["line"]) for event in warnings(caplog)] == [("alice", 2)]


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p])
def test_an_unreadable_file_at_start_is_an_error(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path)  # a missing file, then a directory
    with pytest.raises(HtpasswdError, match=str(path)):
        HtpasswdFile(path)


def test_a_file_replaced_by_a_new_one_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}")
    users = live(path)
    assert users.verify("alice", "pw")
    new = write(tmp_path / "htpasswd.new", f"bob:{bcrypt_hash('pw2')}")
    new.replace(path)  # as an operator's script or a mounted secret does it
    assert users.verify("bob", "pw2")
    assert not users.verify("alice", "pw")
    assert users.users() == ["bob"]


def test_a_file_changed_in_place_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}")
    users = live(path)
    assert users.users() == ["alice"]
    rewrite(path, f"alice:{bcrypt_hash('pw')}", f"carol:{bcrypt_hash('pw3')}")
    assert users.users() == ["alice", "carol"]
    assert users.verify("carol", "pw3")


def test_the_file_is_looked_at_once_a_second(tmp_path: Path, clock: list[float]) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}")
    users = HtpasswdFile(path)
    rewrite(path, f"bob:{bcrypt_hash('pw')}")
    clock[0] += 0.5
    assert users.users() == ["alice"]  # too soon to look
    clock[0] += 0.6
    assert users.users() == ["bob"]


def test_a_vanished_file_keeps_its_users_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}")
    users = live(path)
    path.unlink()
    for _ in range(3):
        assert users.verify("alice", "pw")
        assert not users.verify("alice", "wrong")
    assert users.users() == ["alice"]
    gone = warnings(caplog)
    assert len(gone) == 1
    assert gone[0]["path"] == str(path)
    # Back, with other users: read again.
    write(path, f"bob:{bcrypt_hash('pw')}")
    assert users.users() == ["bob"]


# --- Remembered checks ---------------------------------------------------------------------------


def test_a_successful_check_is_remembered(tmp_path: Path, checks: list[bytes]) -> None:
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}"))
    for _ in range(5):
        assert users.verify("alice", "pw")
    assert len(checks) == 1
    for _ in range(2):  # failures are not: each costs a check
        assert not users.verify("alice", "guess")
    assert len(checks) == 3


def test_a_remembered_check_is_for_that_user_and_password(
    tmp_path: Path, checks: list[bytes]
) -> None:
    same = bcrypt_hash("pw")
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{same}", f"bob:{bcrypt_hash('pw')}"))
    assert users.verify("alice", "pw")
    assert not users.verify("alice", "pw2")
    assert users.verify("bob", "pw")
    assert len(checks) == 3


def test_a_changed_password_is_not_satisfied_by_a_remembered_check(tmp_path: Path) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('old')}")
    users = live(path)
    assert users.verify("alice", "old")
    assert users.verify("alice", "old")  # remembered
    rewrite(path, f"alice:{bcrypt_hash('new')}")
    assert not users.verify("alice", "old")
    assert users.verify("alice", "new")


def test_a_removed_user_is_not_satisfied_by_a_remembered_check(tmp_path: Path) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}", f"bob:{bcrypt_hash('x')}")
    users = live(path)
    assert users.verify("alice", "pw")
    rewrite(path, f"bob:{bcrypt_hash('x')}")
    assert not users.verify("alice", "pw")


def test_no_password_is_kept_in_memory(tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    users = HtpasswdFile(write(tmp_path / "htpasswd", f"alice:{bcrypt_hash(secret)}"))
    assert users.verify("alice", secret)
    kept = users._contents.verified  # the only state a check adds
    assert len(kept) == 1
    assert all(secret.encode() not in key for key in kept)


def test_checks_from_threads_while_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('pw')}")
    users = live(path)
    results: list[bool] = []

    def check() -> None:
        results.extend(users.verify("alice", "pw") for _ in range(40))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    start = path.stat().st_mtime_ns
    for n in range(10):  # alice keeps her password under a new hash each time
        # Replaced whole, as a file being read must be: a rewrite in place can be read half done.
        new = write(
            tmp_path / "htpasswd.new", f"alice:{bcrypt_hash('pw')}", f"u{n}:{bcrypt_hash('x')}"
        )
        mtime = start + (n + 1) * 1_000_000_000
        os.utime(new, ns=(mtime, mtime))
        new.replace(path)
    for thread in threads:
        thread.join()
    assert results == [True] * 160
    assert users.users() == ["alice", "u9"]


# --- Configuration -------------------------------------------------------------------------------


def test_config() -> None:
    assert HtpasswdConfig.model_validate({"path": "/etc/zot/htpasswd"}).path == "/etc/zot/htpasswd"
    with pytest.raises(ValidationError):
        HtpasswdConfig.model_validate({"path": "/x", "paht": "/y"})
    with pytest.raises(ValidationError):
        HtpasswdConfig.model_validate({})


def test_remembered_needs_a_verified_password_and_forgets_a_change(
    tmp_path: Path, checks: list[bytes]
) -> None:
    path = write(tmp_path / "htpasswd", f"alice:{bcrypt_hash('right')}")
    users = live(path)
    assert not users.remembered("alice", "right")  # never verified yet
    assert users.verify("alice", "right")
    assert users.remembered("alice", "right")
    assert not users.remembered("alice", "wrong") and not users.remembered("bob", "right")
    made = len(checks)
    assert users.remembered("alice", "right") and len(checks) == made  # no hashing
    rewrite(path, f"alice:{bcrypt_hash('changed')}")
    assert not users.remembered("alice", "right")
