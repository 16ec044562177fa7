"""Decide whether an outbound callback/webhook may reach a destination (SSRF guard); no I/O.

Callbacks and webhooks send requests to URLs that tenants choose, from inside our network. Left
unchecked, a tenant could point one at the loopback interface, a private service, or the cloud
metadata endpoint (169.254.169.254 and friends hand out credentials) and read the answer.

Why the checks are split the way they are:

* The decisive check happens at CONNECT time, on the addresses actually used. Checking a hostname
  by resolving it first and connecting later is defeated by DNS rebinding (the name answers with a
  public address for the check and with 127.0.0.1 for the connection). `infra.egress_client`
  therefore wraps aiohttp's resolver and drops every address `is_forbidden` refuses from the
  answer the connector is about to use.
* aiohttp does not call the resolver at all for hosts that look like IP literals, so `check_url`
  must refuse forbidden literals itself, before the request is made. `literal_ip` recognises every
  spelling the C library's `inet_aton` (and browsers, per the WHATWG URL standard) accept —
  `127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, … — because a guard that only knows the
  dotted quad is bypassed by the other spellings. A host that *looks* numeric but is not a valid
  address is refused as `bad_url` rather than handed to a resolver that might interpret it.
* `ipaddress`'s `is_global` alone is not enough (in Python 3.11 it calls multicast, site-local and
  IPv4-compatible addresses global), so explicit network lists back it up, and IPv6 forms that
  embed an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are judged by that IPv4 address.
* Cloud metadata addresses are refused even when an operator's allow-list covers them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TypeAlias

import yarl

from domain.errors import ValidationError

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = [
    "EgressRefused",
    "IPAddress",
    "IPNetwork",
    "check_destination",
    "check_url",
    "is_forbidden",
    "literal_ip",
    "parse_allow_list",
]

BLOCKED_DESTINATION = "blocked_destination"
BAD_URL = "bad_url"
BAD_SCHEME = "bad_scheme"


class EgressRefused(Exception):
    """An outbound request the guard will not make; `reason` is a machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[EgressRefused], tuple[str, str]]:
        return (type(self), (self.reason, self.message))


# Refused whatever the allow-list says: instance metadata / credential endpoints of AWS (IMDS,
# ECS task credentials, EKS pod identity), GCP, Azure, Alibaba Cloud and Oracle Cloud.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "192.0.0.192",
    )
)

# Host names refused without a DNS look-up (compared lower-case, trailing dots removed).
BLOCKED_HOSTNAMES = frozenset(
    {"localhost", "localhost.localdomain", "metadata.google.internal", "metadata", "instance-data"}
)

_V4_FORBIDDEN: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)

_V6_FORBIDDEN: tuple[ipaddress.IPv6Network, ...] = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "::ffff:0:0/96",  # IPv4-mapped (judged by its IPv4 address before reaching this list)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique-local, includes fd00:ec2::254
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv6 ranges whose low 32 bits are an IPv4 address: NAT64, IPv4-compatible, IPv4-translated.
_EMBEDS_IPV4_LOW32: tuple[ipaddress.IPv6Network, ...] = (
    _NAT64,
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)
_HOSTNAME_CHARS = re.compile(r"[a-z0-9._-]+")
_DEC = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """Parse `TASKSTREAM_EGRESS_ALLOW_CIDRS`: comma-separated CIDRs (a bare address is a /32 or
    /128); blanks are ignored. Host bits must be zero. Raises ValueError naming a bad entry."""
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"invalid egress allow-list entry {entry!r}: {exc}") from None
    return tuple(networks)


def literal_ip(host: str) -> IPAddress | None:
    """The address `host` spells if it is an IP literal in any accepted spelling, else None.

    IPv4 follows `inet_aton`: one to four parts, each decimal, octal (leading 0) or hexadecimal
    (0x); the last part fills the remaining bytes (`127.1`, `2130706433`, `0x7f.0.0.1`). As in
    browsers, one trailing dot is allowed and `0x` alone is zero. IPv6 may be bracketed and may
    carry a zone id (`fe80::1%eth0`, `%25eth0`), which is dropped from the result. Brackets
    around anything but IPv6 (`[127.0.0.1]`) give None; `check_url` refuses such hosts.
    """
    host = host.strip()
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if ":" in host or bracketed:
        address, _, _zone = host.partition("%")
        try:
            return ipaddress.IPv6Address(address)
        except ValueError:
            return None
    return _inet_aton(host)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "127.0.0.1." — browsers treat the trailing dot as part of the literal
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        value = _number(part)
        if value is None:
            return None
        values.append(value)
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (5 - len(values))):
        return None
    result = last
    for index, value in enumerate(leading):
        result |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(result)


def _number(part: str) -> int | None:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if not _DEC.fullmatch(part):
        return None
    if len(part) > 1 and part[0] == "0":
        if any(c in "89" for c in part):
            return None  # inet_aton refuses an octal part with 8 or 9 in it
        return int(part, 8)
    return int(part, 10)


def _ends_in_a_number(host: str) -> bool:
    """WHATWG: a host whose last label is numeric must be an IPv4 address or the URL is invalid."""
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    last = labels[-1]
    return bool(_DEC.fullmatch(last) or _HEX.fullmatch(last))


def is_forbidden(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    """True unless `address` is public unicast or lies in an `allow` network.

    IPv4-mapped IPv6 addresses are judged as the IPv4 address they connect to; 6to4, Teredo and
    NAT64 addresses are forbidden if the IPv4 address they embed is. Metadata addresses (also
    when embedded) are forbidden even if `allow` covers them.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(int(address))
    target: IPAddress = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        target = address.ipv4_mapped
    embedded = _embedded_ipv4(target)
    if any(a in METADATA_ADDRESSES for a in (address, target, *embedded)):
        return True
    if _allowed(target, allow) or _allowed(address, allow):
        return False
    if target in _NAT64:
        # The well-known NAT64 prefix is globally routable (RFC 6052) although `ipaddress` calls
        # it reserved; what it reaches is the IPv4 address it embeds.
        return not all(_public(a) for a in embedded)
    return not _public(target) or not all(_public(a) for a in embedded)


def _embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    if isinstance(address, ipaddress.IPv4Address):
        return ()
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in _EMBEDS_IPV4_LOW32):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return tuple(found)


def _allowed(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in allow)


def _public(address: IPAddress) -> bool:
    if (
        not address.is_global
        or address.is_private
        or address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in net for net in _V4_FORBIDDEN)
    return not address.is_site_local and not any(address in net for net in _V6_FORBIDDEN)


def check_url(url: str, allow: Sequence[IPNetwork]) -> str:
    """Validate an outbound URL without DNS and return its host as the HTTP client will use it.

    Refuses (EgressRefused) non-http(s) schemes, unparsable URLs, userinfo, a missing or malformed
    host, local/metadata host names and forbidden IP literals in any spelling. A host name that
    passes still has its resolved addresses checked at connect time by the client's resolver.
    """
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        raise EgressRefused(BAD_URL, "the URL cannot be parsed") from None
    if parsed.scheme not in ("http", "https"):
        raise EgressRefused(BAD_SCHEME, f"scheme {parsed.scheme!r} is not http or https")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise EgressRefused(BAD_URL, "the URL must not contain credentials")
    host = parsed.raw_host
    if not host:
        raise EgressRefused(BAD_URL, "the URL has no host")
    address = literal_ip(host)
    if address is None:
        name = host.lower().rstrip(".")
        if ":" in host or not _HOSTNAME_CHARS.fullmatch(host.lower()) or not name:
            raise EgressRefused(BAD_URL, f"invalid host {host!r}")
        if _ends_in_a_number(name):
            raise EgressRefused(BAD_URL, f"host {host!r} is neither a name nor an IP address")
        if name in BLOCKED_HOSTNAMES or name.endswith(".localhost"):
            raise EgressRefused(BLOCKED_DESTINATION, f"host {host!r} is a local name")
        return host
    if is_forbidden(address, allow):
        raise EgressRefused(BLOCKED_DESTINATION, f"address {address} is not a public destination")
    return host


def check_destination(url: str, allow: Sequence[IPNetwork], *, field: str) -> None:
    """The create/update-time rule every surface applies to a URL it stores for later calls.

    The same `check_url` the client runs before each call, so what is refused later is refused
    now, as a ValidationError naming `field`; host names are resolved (and checked) only at call
    time, when the addresses used are the ones that count.
    """
    try:
        check_url(url, allow)
    except EgressRefused as exc:
        raise ValidationError(exc.message, field=field) from None
