"""The ClientHello SNI reader: real ClientHellos (from Python's ssl, as clients send them),
fed whole and byte by byte, split across records, and malformed input of every kind."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossamer.protocols.sni import NOT_TLS, ClientHello, ClientHelloReader


def client_hello(server_name: str | None) -> bytes:
    """The first flight of a real TLS client (no network: memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def read(data: bytes) -> ClientHello | None:
    return ClientHelloReader().feed(data)


HELLO = client_hello("Publisher.Example")


def test_server_name_of_a_real_client_hello() -> None:
    assert read(HELLO) == ClientHello(True, "publisher.example")


def test_no_server_name() -> None:
    assert read(client_hello(None)) == ClientHello(True, None)


def test_byte_by_byte_answers_exactly_when_whole() -> None:
    reader = ClientHelloReader()
    for i, byte in enumerate(HELLO):
        result = reader.feed(bytes([byte]))
        if i < len(HELLO) - 1:
            assert result is None
    assert reader.result == ClientHello(True, "publisher.example")
    assert reader.feed(b"more") == reader.result  # answered once, then stable


def test_client_hello_split_across_records() -> None:
    header, fragment = HELLO[:5], HELLO[5:]
    cut = 40
    records = b"".join(
        header[:3] + len(part).to_bytes(2, "big") + part
        for part in (fragment[:cut], fragment[cut:])
    )
    assert read(records) == ClientHello(True, "publisher.example")


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x02\x00",  # not TLS 1.x
        b"SSH-2.0-OpenSSH\r\n",
    ],
)
def test_not_tls(data: bytes) -> None:
    assert read(data) == NOT_TLS


def _with_body(body: bytes, handshake_type: int = 1) -> bytes:
    handshake = bytes([handshake_type]) + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def _hello_body(extensions: bytes | None, suites: bytes = b"\x13\x01") -> bytes:
    body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + len(suites).to_bytes(2, "big") + suites
    body += b"\x01\x00"
    if extensions is not None:
        body += len(extensions).to_bytes(2, "big") + extensions
    return body


def _sni_ext(name: bytes, name_type: int = 0) -> bytes:
    entry = bytes([name_type]) + len(name).to_bytes(2, "big") + name
    listing = len(entry).to_bytes(2, "big") + entry
    return b"\x00\x00" + len(listing).to_bytes(2, "big") + listing


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_with_body(_hello_body(None), handshake_type=2), "handshake type 2"),
        (b"\x16\x03\x01\x00\x00", "record length 0"),
        (_with_body(_hello_body(None, suites=b"")), "cipher suites"),
        (_with_body(_hello_body(_sni_ext(b"a.example"))[:-3] + b"\x00\x00\x00"), ""),
        (_with_body(_hello_body(_sni_ext(b"bad/name"))), "server name"),
        (_with_body(_hello_body(_sni_ext(b"\xff\xfe"))), "not ASCII"),
        (_with_body(_hello_body(_sni_ext(b""))), "server name"),
        (_with_body(_hello_body(b"\x00\x00\x00\x09\x00\x05")), "truncated"),
        (_with_body(_hello_body(None) + b"junk"), "truncated"),
        (b"\x16\x03\x01\x00\x05\x01\x00\x00\x10\x00" + b"\x17\x03\x03\x00\x01\x00", "not a hand"),
    ],
)
def test_malformed_is_refused_not_raised(data: bytes, why: str) -> None:
    result = read(data)
    assert result is not None and not result.tls
    assert result.error.startswith("malformed ClientHello")
    assert why in result.error


def test_handmade_hello_with_sni_and_other_extensions() -> None:
    other = b"\x00\x0b\x00\x02\x01\x00"  # ec_point_formats
    assert read(_with_body(_hello_body(other + _sni_ext(b"db.test.")))) == ClientHello(
        True, "db.test"
    )
    assert read(_with_body(_hello_body(other))) == ClientHello(True, None)
    assert read(_with_body(_hello_body(None))) == ClientHello(True, None)
    assert read(_with_body(_hello_body(_sni_ext(b"x", name_type=1)))) == ClientHello(True, None)


def test_too_large_is_refused() -> None:
    huge = b"\x16\x03\x01\x40\x00" + b"\x01\xff\xff\xff" + b"\x00" * 16380
    assert read(huge) == ClientHello(False, error="malformed ClientHello: too large")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=50))
def test_never_raises_on_garbage_in_any_chunking(data: bytes, chunk: int) -> None:
    for prefix in (b"", b"\x16\x03\x01", HELLO[: len(HELLO) // 2]):
        reader = ClientHelloReader()
        blob = prefix + data
        for i in range(0, len(blob), chunk):
            reader.feed(blob[i : i + chunk])
        assert reader.result is None or isinstance(reader.result, ClientHello)
