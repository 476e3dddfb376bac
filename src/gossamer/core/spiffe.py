"""SPIFFE identities: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = re.compile(r"^spiffe://([a-z0-9.-]+)/ns/([a-z0-9.-]+)/sa/([A-Za-z0-9._-]+)$")


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, text: str) -> SpiffeId:
        found = _ID.match(text)
        if found is None:
            raise ValueError(f"not a workload SPIFFE ID (spiffe://TD/ns/NS/sa/SA): {text!r}")
        return cls(found.group(1), found.group(2), found.group(3))


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return str(SpiffeId(trust_domain, namespace, service_account))
