"""Which member of ``cluster.members`` this instance is, as zot finds it: the member whose port
is ``http.port`` and whose host resolves to an address this instance listens on (``http.address``,
or any address of this machine when it listens on all of them)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ocireg.cluster.hashing import owner_index
from ocireg.cluster.settings import ClusterConfig, split_member

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class NotAMember(ValueError):
    """No member (or more than one) is this instance: the cluster cannot route."""


@dataclass(frozen=True)
class Cluster:
    members: tuple[str, ...]
    hash_key: str
    me: int

    @property
    def others(self) -> tuple[str, ...]:
        return tuple(m for i, m in enumerate(self.members) if i != self.me)

    def owner(self, repository: str) -> int:
        return owner_index(self.hash_key, len(self.members), repository)

    def owns(self, repository: str) -> bool:
        return self.owner(repository) == self.me


def _addresses(host: str) -> set[str]:
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()  # a member not resolvable now is not this one
    return {str(ipaddress.ip_address(info[4][0])) for info in found}


def _is_local(address: str) -> bool:
    """Whether this machine holds ``address``: only then can a socket be bound to it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


def _listening_on(member: str, address: str, port: int) -> bool:
    host, member_port = split_member(member)
    if member_port != port:
        return False
    resolved = _addresses(host)
    if address in _WILDCARDS:
        return any(_is_local(each) for each in resolved)
    return bool(resolved & _addresses(address))


def identify(config: ClusterConfig, address: str, port: int) -> Cluster:
    """This instance's place in the cluster, or NotAMember naming the key path."""
    mine = [i for i, m in enumerate(config.members) if _listening_on(m, address, port)]
    if len(mine) != 1:
        which = "none" if not mine else ", ".join(config.members[i] for i in mine)
        raise NotAMember(
            f"cluster.members: exactly one member must be this instance "
            f"(http.address {address or '*'}, http.port {port}); found {which}"
        )
    return Cluster(tuple(config.members), config.hashKey, mine[0])


def ownership(config: ClusterConfig | None, address: str, port: int) -> Callable[[str], bool]:
    """Whether this instance owns a repository: every one outside a cluster. For background
    work that writes repositories itself (periodic sync), which only the owner may do."""
    if config is None:
        return lambda _: True
    return identify(config, address, port).owns
