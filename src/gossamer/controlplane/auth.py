"""API tokens. An admin token is generated at first start and kept 0600 in the state dir."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ADMIN_TOKEN_FILE = "admin.token"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "admin" may write; "reader" may only read


def load_or_create_admin_token(state_dir: Path) -> str:
    path = state_dir / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            # Tighten a file someone loosened; the token is a credential.
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return token
    token = secrets.token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


class TokenAuthority:
    def __init__(self, admin_token: str) -> None:
        self._admin = admin_token

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if hmac.compare_digest(token.strip().encode(), self._admin.encode()):
            return Principal("admin", "admin")
        return None
