"""The SSRF guard's pure decisions: IP literal spellings, forbidden ranges, URL checks."""

from __future__ import annotations

import ipaddress

import pytest

from infra.egress_guard import (
    EgressRefused,
    check_url,
    is_forbidden,
    literal_ip,
    parse_allow_list,
)

NONE = parse_allow_list("")
LOOPBACK = parse_allow_list("127.0.0.0/8")

FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0X7F.0.0.1",
    "127.0.0.1.",
    "0.0.0.0",
    "0",
    "[::]",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::7f00:1]",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "[fd00:ec2::254]",
    "[fc00::1]",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[fec0::1]",
    "198.18.0.1",
    "224.0.0.1",
    "[ff02::1]",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.170",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "[2001:db8::1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::a00:1]",
    "[64:ff9b:1::1]",
    "[2002:7f00:1::]",
    "[2002:a9fe:a9fe::]",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_forbidden_literal_is_refused_with_empty_allow_list(host: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url(f"http://{host}/hook", NONE)
    assert caught.value.reason == "blocked_destination"


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("00000000000000127.0.0.1", "87.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("4294967295", "255.255.255.255"),
        ("1.16777215", "1.255.255.255"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_literal_ip_accepts_every_inet_aton_spelling(spelling: str, address: str) -> None:
    assert literal_ip(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "1.2.3.4.5",
        "4294967296",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.65536",
        "08.0.0.1",
        "0x1g.0.0.1",
        "127..1",
        "",
        "0xdeadbeef.com",
        "[127.0.0.1]",
        "[::1",
        "::ffff:127.1",
    ],
)
def test_literal_ip_returns_none_for_names_and_invalid_literals(host: str) -> None:
    assert literal_ip(host) is None


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost.", "a.localhost", "LOCALHOST", "metadata.google.internal"],
)
def test_local_host_names_are_refused_without_dns(host: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url(f"http://{host}:8080/", NONE)
    assert caught.value.reason == "blocked_destination"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ftp://example.com/",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "example.com/hook",
        "//example.com/hook",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url(url, NONE)
    assert caught.value.reason == "bad_scheme"


@pytest.mark.parametrize(
    "url",
    [
        "http://u@127.0.0.1/",
        "http://u@example.com/",
        "http://example.com:80@127.0.0.1/",
        "http://[127.0.0.1]/",
        "http:///path",
        "http://127.0.0.1\\@example.com/",
        "http://08.0.0.1/",
        "http://1.2.3.4.5/",
        "http://4294967296/",
        "http://%31%32%37.0.0.1/",
        "http://a b/",
    ],
)
def test_url_tricks_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url(url, NONE)
    assert caught.value.reason == "bad_url"


def test_fragment_does_not_hide_the_real_host() -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url("http://127.0.0.1#@example.com", NONE)
    assert caught.value.reason == "blocked_destination"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://93.184.215.14/", "93.184.215.14"),
        ("https://example.com/x", "example.com"),
        ("HTTPS://Example.COM./x?y=1", "example.com."),
        ("http://[2606:4700::1]/", "2606:4700::1"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:808:808"),
        ("http://[2002:808:808::1]/", "2002:808:808::1"),
        ("http://[64:ff9b::808:808]/", "64:ff9b::808:808"),
        ("http://bücher.de/", "xn--bcher-kva.de"),
        ("http://notlocalhost.com/", "notlocalhost.com"),
    ],
)
def test_public_destinations_are_allowed(url: str, host: str) -> None:
    assert check_url(url, NONE) == host


def test_allow_list_admits_loopback_in_any_spelling() -> None:
    assert check_url("http://127.0.0.1:8080/", LOOPBACK) == "127.0.0.1"
    assert check_url("http://127.1/", LOOPBACK) == "127.1"
    assert check_url("http://[::ffff:127.0.0.1]/", LOOPBACK) == "::ffff:7f00:1"


def test_allow_list_does_not_admit_other_private_ranges() -> None:
    with pytest.raises(EgressRefused):
        check_url("http://10.0.0.1/", LOOPBACK)
    with pytest.raises(EgressRefused):
        check_url("http://[::1]/", LOOPBACK)


def test_allow_list_never_admits_local_host_names() -> None:
    with pytest.raises(EgressRefused):
        check_url("http://localhost/", LOOPBACK)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"],
)
def test_metadata_addresses_are_refused_even_when_allowed(address: str) -> None:
    allow = parse_allow_list("169.254.0.0/16,100.64.0.0/10,fd00::/8,::/0,0.0.0.0/0")
    assert is_forbidden(ipaddress.ip_address(address), allow)


def test_metadata_literal_refused_by_check_url_despite_allow_list() -> None:
    with pytest.raises(EgressRefused) as caught:
        check_url("http://169.254.169.254/latest/meta-data/", parse_allow_list("169.254.0.0/16"))
    assert caught.value.reason == "blocked_destination"
    assert check_url("http://169.254.1.1/", parse_allow_list("169.254.0.0/16")) == "169.254.1.1"


def test_is_forbidden_ignores_ipv6_zone() -> None:
    assert is_forbidden(ipaddress.IPv6Address("fe80::1%eth0"), NONE)
    assert not is_forbidden(ipaddress.IPv6Address("fe80::1%eth0"), parse_allow_list("fe80::/10"))


def test_parse_allow_list() -> None:
    assert parse_allow_list("") == ()
    assert parse_allow_list("  ") == ()
    assert parse_allow_list("127.0.0.0/8, ::1/128,") == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_allow_list("10.1.2.3") == (ipaddress.ip_network("10.1.2.3/32"),)


@pytest.mark.parametrize("bad", ["127.0.0.0/33", "not-a-cidr", "127.0.0.1/8", "::1/129"])
def test_parse_allow_list_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid egress allow-list entry") as caught:
        parse_allow_list(f"10.0.0.0/8,{bad}")
    assert repr(bad) in str(caught.value)


def test_egress_refused_carries_reason_and_message() -> None:
    exc = EgressRefused("bad_url", "nope")
    assert (exc.reason, exc.message, str(exc)) == ("bad_url", "nope", "nope")
