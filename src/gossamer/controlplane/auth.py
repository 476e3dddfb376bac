"""Tokens and who may do what with them.

- Roles: `admin` (everything), `reader` (API reads only), `dataplane` (one workload
  identity: its xDS stream, its certificate, its mTLS report; nothing on the API).
- An admin token is generated at first start and kept 0600 in STATE_DIR/admin.token
  (the bootstrap credential of the CLI on this machine). Other tokens are created with
  `gossamer token create` and stored hashed (SHA-256) in STATE_DIR/tokens.json: the
  control plane cannot show a token again, only revoke it.
- Token text: `gst_<id>_<secret>`; the id finds the record, the secret is compared in
  constant time against its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import grpc

from gossamer.controlplane.ca.service import Refused
from gossamer.controlplane.translate.node import ProxyNode

ADMIN_TOKEN_FILE = "admin.token"
TOKENS_FILE = "tokens.json"
Role = Literal["admin", "reader", "dataplane"]
ROLES: tuple[Role, ...] = ("admin", "reader", "dataplane")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "admin" may write; "reader" may only read; "dataplane": one workload
    service: str = ""  # dataplane: the service account it may act as
    namespace: str = ""
    token_id: str = ""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    role: str
    service: str
    namespace: str
    created: float
    hash: str
    revoked: float | None = None

    def public(self) -> dict[str, object]:
        out = asdict(self)
        del out["hash"]
        return out


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


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Hashed tokens in a JSON file (0600), rewritten atomically on every change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[str, TokenRecord] = {}
        if path is not None and path.exists():
            for item in json.loads(path.read_text()):
                record = TokenRecord(**item)
                self._records[record.id] = record

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([asdict(r) for r in self._records.values()], f, indent=2)
        tmp.replace(self.path)

    def create(
        self, role: str, name: str = "", service: str = "", namespace: str = "default"
    ) -> tuple[TokenRecord, str]:
        if role not in ROLES:
            raise ValueError(f"role: must be one of {', '.join(ROLES)}, got {role!r}")
        if role == "dataplane":
            if not service or not _NAME.match(service):
                raise ValueError("service: a dataplane token needs --service NAME (a DNS label)")
            if not _NAME.match(namespace):
                raise ValueError(f"namespace: {namespace!r} is not a valid namespace")
        elif service:
            raise ValueError(f"service: only dataplane tokens name a service, not {role}")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(
            id=token_id,
            name=name or (f"{namespace}/{service}" if service else role),
            role=role,
            service=service,
            namespace=namespace if role == "dataplane" else "",
            created=time.time(),
            hash=_digest(secret),
        )
        with self._lock:
            self._records[token_id] = record
            self._save()
        return record, f"gst_{token_id}_{secret}"

    def list(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.created)

    def revoke(self, token_id: str) -> TokenRecord:
        with self._lock:
            record = self._records.get(token_id)
            if record is None:
                raise KeyError(token_id)
            if record.revoked is None:
                record = TokenRecord(**{**asdict(record), "revoked": time.time()})
                self._records[token_id] = record
                self._save()
        return record

    def authenticate(self, token: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "gst":
            return None
        record = self._records.get(parts[1])
        if record is None or record.revoked is not None:
            return None
        if not hmac.compare_digest(_digest(parts[2]), record.hash):
            return None
        return Principal(record.name, record.role, record.service, record.namespace, record.id)


class TokenAuthority:
    def __init__(self, admin_token: str, store: TokenStore | None = None) -> None:
        self._admin = admin_token
        self.store = store or TokenStore(None)

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token = token.strip()
        if hmac.compare_digest(token.encode(), self._admin.encode()):
            return Principal("admin", "admin")
        return self.store.authenticate(token)


class XdsAuthenticator:
    """Who may open an xDS stream, get a certificate or report for a node.

    Sidecars and gateways need a token: a dataplane token for exactly their identity
    (namespace and service account), or an admin token. Proxyless gRPC clients carry no
    token by default (their bootstrap has no place for one): allowed unless
    `anonymous_proxyless` is off; a token they do send must be valid.
    """

    def __init__(self, tokens: TokenAuthority, anonymous_proxyless: bool = True) -> None:
        self.tokens = tokens
        self.anonymous_proxyless = anonymous_proxyless

    def check_node(self, node: ProxyNode, metadata: Mapping[str, str]) -> None:
        header = metadata.get("authorization")
        principal = self.tokens.authenticate(header)
        if node.kind == "proxyless":
            if header is None and self.anonymous_proxyless:
                return
            if principal is None:
                raise Refused(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "proxyless clients need a valid token on this control plane "
                    "(--no-anonymous-proxyless)",
                )
            return
        if principal is None:
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"node {node.id!r}: a valid token is required "
                "(`gossamer token create --service S`, then --token or GOSSAMER_PROXY_TOKEN)",
            )
        if principal.role == "admin":
            return
        account = node.service_account or node.service or node.gateway or node.workload
        if principal.role != "dataplane" or (principal.service, principal.namespace) != (
            account,
            node.namespace,
        ):
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"token {principal.name!r} may not act as {node.namespace}/{account}",
            )
