r"""A real OpenLDAP ``slapd`` on a loopback port, seeded with a small directory, for LDAP tests.

The server runs as a child process from a temporary ``slapd.conf`` (mdb backend, the core,
cosine, inetorgperson and nis schemas) and listens for plain LDAP (StartTLS offered) and for
LDAPS, both with a certificate from a throwaway CA made here. The ``memberof`` overlay keeps
``memberOf`` on each user entry in step with the groups, so the directory looks like the usual
"groups listed on the user" setup that zot's ``userGroupAttribute`` reads.

The directory (``dc=example,dc=org``)::

    cn=reader                        service account, may read everything but passwords
    ou=users
        uid=alice                    groups devs, admins
        uid=bob                      group devs
        uid=dave                     no group
        uid=o\\brien*(x)             group devs (a name of filter metacharacters)
        ou=contractors
            uid=carol                group contractors (only found with a subtree search)
            uid=dave                 a second dave: ambiguous under a subtree search
    ou=groups
        cn=devs, cn=admins, cn=contractors   (groupOfNames)

Passwords are in the ``User`` constants below. Anonymous clients may only bind, so a search
without the service account finds nothing. slapd also answers on 127.0.0.2, an address its
certificate does not name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.utils.dn import escape_rdn

from tests import certs
from tests.tools import require_binary

BASE_DN = "dc=example,dc=org"
USERS_DN = f"ou=users,{BASE_DN}"
CONTRACTORS_DN = f"ou=contractors,{USERS_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "admin-secret"
SERVICE_DN = f"cn=reader,{BASE_DN}"
SERVICE_PASSWORD = "reader-secret"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
START_TIMEOUT = 15.0
# slapd listens here too, but the certificate names 127.0.0.1 only: a client that checks
# names must refuse it. (All of 127/8 is loopback on Linux, no name resolution involved.)
OTHER_HOST = "127.0.0.2"


@dataclass(frozen=True)
class User:
    uid: str
    password: str
    parent: str
    groups: tuple[str, ...]

    @property
    def dn(self) -> str:
        return f"uid={escape_rdn(self.uid)},{self.parent}"


# carol's password is not ASCII and has filter metacharacters: it must pass through untouched.
ALICE = User("alice", "alice-wonderland", USERS_DN, ("devs", "admins"))
BOB = User("bob", "bob-builder", USERS_DN, ("devs",))
CAROL = User("carol", "c@rol (s)ings* ünïcode", CONTRACTORS_DN, ("contractors",))
DAVE = User("dave", "dave-password", USERS_DN, ())
DAVE_CONTRACTOR = User("dave", "dave-password", CONTRACTORS_DN, ())
# A real name made of filter metacharacters: escaping must find it, not break it.
ODD = User("o\\brien*(x)", "odd-password", USERS_DN, ("devs",))
USERS = (ALICE, BOB, CAROL, DAVE, DAVE_CONTRACTOR, ODD)
GROUPS = ("devs", "admins", "contractors")


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS_DN}"


@dataclass
class Slapd:
    """A running slapd; ``ldap_config()`` gives zot's ``http.auth.ldap`` keys to reach it."""

    directory: Path
    port: int
    ldaps_port: int
    process: subprocess.Popen[bytes]
    ca_cert: Path
    host: str = "127.0.0.1"
    other_host: str = OTHER_HOST
    base_dn: str = BASE_DN
    users_dn: str = USERS_DN
    service_dn: str = SERVICE_DN
    service_password: str = SERVICE_PASSWORD
    users: tuple[User, ...] = field(default=USERS)

    @property
    def log(self) -> Path:
        return self.directory / "slapd.log"

    def ldap_config(self, **overrides: Any) -> dict[str, Any]:
        """Plain LDAP, users searched one level under ou=users, groups from memberOf."""
        config: dict[str, Any] = {
            "address": self.host,
            "port": self.port,
            "insecure": True,
            "baseDN": self.users_dn,
            "userAttribute": "uid",
            "userGroupAttribute": "memberOf",
            "bindDN": self.service_dn,
            "bindPassword": self.service_password,
        }
        config.update(overrides)
        return config

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server (idempotent); later connections are refused."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_slapd(directory: Path) -> Iterator[Slapd]:
    """Start and seed a slapd in ``directory`` (which it fills); stop it on exit.

    Skips the test when slapd is not installed, or fails under OCIREG_REQUIRE_E2E=1.
    """
    binary = _slapd_binary()
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = _write_certificates(directory)
    server = _start(binary, directory, ca_cert)
    try:
        _seed(server)
        yield server
    finally:
        server.stop()


def _slapd_binary() -> str:
    # Debian keeps slapd in /usr/sbin, which a non-root PATH may lack.
    if Path("/usr/sbin/slapd").is_file():
        return "/usr/sbin/slapd"
    return require_binary("slapd", "apt-get install slapd ldap-utils")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(binary: str, directory: Path, ca_cert: Path) -> Slapd:
    # The free ports may be taken by someone else before slapd binds them: try a few pairs.
    problem = ""
    for _attempt in range(3):
        port, ldaps_port = _free_port(), _free_port()
        if port == ldaps_port:
            continue
        server = _launch(binary, directory, ca_cert, port, ldaps_port)
        problem = _wait_ready(server)
        if not problem:
            return server
        server.stop()
    raise RuntimeError(f"slapd did not start: {problem}")


def _launch(binary: str, directory: Path, ca_cert: Path, port: int, ldaps_port: int) -> Slapd:
    database = directory / "db"
    if database.exists():
        for leftover in database.iterdir():
            leftover.unlink()
    database.mkdir(exist_ok=True)
    conf = directory / "slapd.conf"
    conf.write_text(_slapd_conf(directory, database))
    urls = " ".join(
        f"{scheme}://{host}:{number}/"
        for host in ("127.0.0.1", OTHER_HOST)
        for scheme, number in (("ldap", port), ("ldaps", ldaps_port))
    )
    with (directory / "slapd.log").open("wb") as log:
        # -d keeps slapd in the foreground so it stays our child and dies with SIGTERM.
        process = subprocess.Popen(
            [binary, "-d", "0", "-f", str(conf), "-h", urls],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Slapd(directory, port, ldaps_port, process, ca_cert)


def _slapd_conf(directory: Path, database: Path) -> str:
    includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    return f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {directory}/slapd.pid
TLSCACertificateFile {directory}/ca.crt
TLSCertificateFile {directory}/server.crt
TLSCertificateKeyFile {directory}/server.key

database mdb
maxsize 16777216
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {database}

# Adding a user to a groupOfNames writes memberOf on the user (the overlay only acts on
# changes made through the protocol, which is why _seed adds entries over LDAP).
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf

access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="{SERVICE_DN}" read
    by self read
    by * none
"""


def _wait_ready(server: Slapd) -> str:
    """'' once an admin bind succeeds; otherwise why slapd is not there."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not server.running():
            return f"exited with {server.process.returncode}: {server.log.read_text()[-2000:]}"
        try:
            with _admin(server):
                return ""
        except ldap3.core.exceptions.LDAPException:
            time.sleep(0.05)
    return f"no answer on port {server.port} within {START_TIMEOUT}s"


@contextmanager
def _admin(server: Slapd) -> Iterator[ldap3.Connection]:
    """A connection bound as the rootdn. (ldap3's own ``with`` leaves an auto-bound
    connection open, hence the explicit unbind.)"""
    target = ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE, connect_timeout=2)
    conn = ldap3.Connection(target, user=ADMIN_DN, password=ADMIN_PASSWORD, raise_exceptions=True)
    try:
        conn.open(read_server_info=False)
        conn.bind(read_server_info=False)
        yield conn
    finally:
        conn.unbind()
        if conn.socket is not None:  # ldap3 leaves it open when connecting failed
            conn.socket.close()


def ssha(password: str) -> str:
    """``{SSHA}`` userPassword as slapd checks it: SHA-1 over password and salt, salt appended."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _seed(server: Slapd) -> None:
    with _admin(server) as admin:
        admin.add(BASE_DN, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
        for unit in (USERS_DN, CONTRACTORS_DN, GROUPS_DN):
            admin.add(unit, ["organizationalUnit"])
        admin.add(
            SERVICE_DN,
            ["organizationalRole", "simpleSecurityObject"],
            {"userPassword": ssha(SERVICE_PASSWORD)},
        )
        for user in USERS:
            attributes = {
                "cn": user.uid.title(),
                "sn": user.uid.title(),
                "userPassword": ssha(user.password),
            }
            admin.add(user.dn, ["inetOrgPerson"], attributes)
        for group in GROUPS:
            members = [user.dn for user in USERS if group in user.groups]
            admin.add(group_dn(group), ["groupOfNames"], {"member": members})


def _write_certificates(directory: Path) -> Path:
    """A CA (ca.crt, what a client trusts) and a server certificate for 127.0.0.1."""
    ca = certs.make_ca(directory, "ca")
    certs.issue_server(ca, directory)
    return ca.cert_path
