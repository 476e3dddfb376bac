"""No key, certificate or token survives into a log line."""

from __future__ import annotations

import io
import logging

from gossamer.core.logs import configure, get_logger, redact
from gossamer.core.pki import key_pem, new_key

TOKEN = "gst_0123456789ab_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA-_x"


def test_pem_blocks_tokens_and_key_fields_are_masked() -> None:
    pem = key_pem(new_key()).decode()
    line = f"loaded {pem} with authorization=Bearer abc.def-123 and {TOKEN} token=s3cr3t"
    out = redact(line)
    assert "PRIVATE KEY-----" not in out and pem.splitlines()[1] not in out
    assert "[private key redacted]" in out
    assert "abc.def-123" not in out and "s3cr3t" not in out
    assert "Zm9vYmFy" not in out and "gst_0123456789ab_" in out  # the id stays


def test_the_configured_formatters_redact() -> None:
    stream = io.StringIO()
    configure("info", "text")
    handler = logging.getLogger("gossamer").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = get_logger("test.redaction")
    log.info("got secret", chain=key_pem(new_key()).decode(), header=f"Bearer {TOKEN}")
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        log.error("failed", exc_info=True)
    text = stream.getvalue()
    assert "BEGIN PRIVATE KEY" not in text and "Zm9vYmFy" not in text
    assert "[private key redacted]" in text
    configure("info", "json")
    handler = logging.getLogger("gossamer").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log.info("json", chain=key_pem(new_key()).decode())
    assert stream.getvalue().count("BEGIN PRIVATE KEY") == 0
    configure("info", "text")
