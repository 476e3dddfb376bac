"""Structured logs: `key=value` lines (or JSON) with levels, on stderr.

log = get_logger("controlplane.api")
log.info("resource applied", resource="Service default/web", action="created")
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# What must never reach a log: PEM blocks (keys, certificates, CSRs), bearer tokens, and
# Gossamer tokens wherever they appear (their id stays, to tell them apart).
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?(-----END \1-----|$)", re.S)
_PEM_ESCAPED = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(?:\\n|[^\"])*?(-----END \1-----|$)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_TOKEN = re.compile(r"\b(gst_[0-9a-f]+_)[A-Za-z0-9_-]+")
_KEY_FIELD = re.compile(r'(?i)("?(?:private_?key|token|secret|password)"?\s*[=:]\s*"?)[^\s",}]+')


def redact(text: str) -> str:
    """Mask secrets in a log line (see the patterns above)."""
    if "-----BEGIN" in text:
        text = _PEM.sub(lambda m: f"[{m.group(1).lower()} redacted]", text)
        text = _PEM_ESCAPED.sub(lambda m: f"[{m.group(1).lower()} redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _TOKEN.sub(r"\1[redacted]", text)
    return _KEY_FIELD.sub(r"\1[redacted]", text)


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        parts += [f"{k}={_quote(v)}" for k, v in _fields(record).items()]
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return redact(" ".join(parts))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class Logger:
    """A thin wrapper so call sites pass fields as keywords."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, msg: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, extra=fields, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, False, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, False, fields)

    def error(self, msg: str, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, msg, exc_info, fields)

    def is_debug(self) -> bool:
        return self._logger.isEnabledFor(logging.DEBUG)


def get_logger(name: str) -> Logger:
    return Logger(logging.getLogger(f"gossamer.{name}"))


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger("gossamer")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
