from gossamer.cli.check import expiry_findings


def _status(issuer_days: float, leaves: list[dict[str, object]]) -> dict[str, object]:
    return {
        "enabled": True,
        "issuer": {"daysToExpiry": issuer_days},
        "roots": [{"subject": "CN=root", "daysToExpiry": issuer_days}],
        "leaves": leaves,
    }


def test_healthy_certificates_give_no_finding() -> None:
    leaf = {"node": "a", "notAfter": 1060.0, "lifetimeSeconds": 60}
    assert expiry_findings(_status(3650, [leaf]), now=1010.0) == []


def test_expiring_and_expired_certificates_are_reported() -> None:
    late = {"node": "late", "notAfter": 1010.0, "lifetimeSeconds": 60}
    gone = {"node": "gone", "notAfter": 990.0, "lifetimeSeconds": 60}
    found = expiry_findings(_status(10, [late, gone]), now=1000.0)
    levels = {
        message.split(" ")[2] if "certificate" in message else message: level
        for level, message in found
    }
    assert ("warning", "CA issuer expires in 10.0 days: rotate it") in found
    assert any(lvl == "warning" and "late" in msg for lvl, msg in found)
    assert ("error", "certificate of gone has expired") in found
    assert levels
    assert expiry_findings({"enabled": False})[0][0] == "warning"
