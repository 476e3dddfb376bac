from gossamer.proxy.io.tls import peer_identity, spiffe_ids


class _Ssl:
    def __init__(self, cert: dict[str, object]) -> None:
        self.cert = cert

    def getpeercert(self) -> dict[str, object]:
        return self.cert


class _Transport:
    def __init__(self, ssl_object: object) -> None:
        self.ssl_object = ssl_object

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.ssl_object if name == "ssl_object" else default


def test_plaintext_has_no_identity() -> None:
    assert peer_identity(_Transport(None)) is None


def test_spiffe_uri_san_is_the_identity() -> None:
    cert = {
        "subjectAltName": (
            ("DNS", "benigno"),
            ("URI", "spiffe://gossamer.local/ns/default/sa/benigno"),
        )
    }
    assert peer_identity(_Transport(_Ssl(cert))) == "spiffe://gossamer.local/ns/default/sa/benigno"


def test_unverified_or_ambiguous_certificates_give_none() -> None:
    assert peer_identity(_Transport(_Ssl({}))) is None
    two = {"subjectAltName": (("URI", "spiffe://a/ns/x/sa/y"), ("URI", "spiffe://a/ns/x/sa/z"))}
    assert peer_identity(_Transport(_Ssl(two))) is None
    assert spiffe_ids({"subjectAltName": (("URI", "https://x"),)}) == ()
