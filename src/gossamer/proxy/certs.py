"""The sidecar's workload certificate: key made here, CSR to the control plane, renewal.

- The private key is generated in this process and never sent anywhere: the control
  plane gets a CSR (`gossamer.ca.v1.CertificateService/Sign` on the xDS port, with the
  same bearer token as the xDS stream) and pushes the signed chain back over SDS
  (Secret `default`, certificate only). `complete()` pairs a pushed chain with the key it
  was made for, by public key, so a chain and a key never mismatch.
- Renewal at half-life (`RenewalTimer`, sans-IO, tested on a fake clock); a failed
  attempt is retried with backoff, never later than a quarter of what is left.
- Until the first certificate, TLS listeners do not listen and TLS clusters do not
  connect (never plaintext instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gossamer.core.logs import get_logger
from gossamer.proxy.config import model as m

log = get_logger("proxy.certs")

CERT_SECRET = "default"
TRUST_SECRET = "ROOTCA"
SIGN = "/gossamer.ca.v1.CertificateService/Sign"
REPORT = "/gossamer.ca.v1.CertificateService/Report"
IDENTITY = "/gossamer.ca.v1.CertificateService/Identity"
KEYS_KEPT = 3  # the current key, the one being renewed to, and one before


@dataclass(frozen=True)
class RenewalTimer:
    """When to ask for a certificate next (pure; times are Unix seconds)."""

    first_retry: float = 0.2
    max_retry: float = 10.0

    def after_issue(self, received: float, not_after: float) -> float:
        """Half-life, counted from when we got it (notBefore is backdated for clock skew)."""
        return received + (not_after - received) / 2

    def after_failure(self, now: float, failures: int, not_after: float | None) -> float:
        delay = min(self.max_retry, self.first_retry * float(2 ** max(0, failures - 1)))
        if not_after is not None and not_after > now:
            delay = min(delay, max(self.first_retry, (not_after - now) / 4))
        return now + delay


@dataclass(frozen=True)
class Held:
    chain: bytes
    key: bytes
    bundle: bytes
    not_before: float
    not_after: float
    spiffe_id: str


class CertManager:
    def __init__(
        self,
        target: str,
        node_id: str,
        token: str | None = None,
        credentials: Any = None,
        on_change: Callable[[], None] | None = None,
        timer: RenewalTimer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.node_id = node_id
        self.token = token
        self.credentials = credentials
        self.on_change = on_change
        self.timer = timer or RenewalTimer()
        self.clock = clock
        # Certificate chain we were issued -> (its private key PEM, notAfter): a pushed
        # chain is paired with its key by these exact bytes, never by guess.
        self.keys: dict[bytes, tuple[bytes, float]] = {}
        self.held: Held | None = None
        self.renewals = 0
        self.failures = 0
        self.last_error = ""
        self._kick = asyncio.Event()
        self._stopped = False
        self._channel: Any = None

    # --- pairing SDS secrets with our keys ---------------------------------------------

    def complete(self, secrets: dict[str, m.Secret]) -> dict[str, m.Secret]:
        """The config's secrets with our private key on `default`; our own certificate and
        bundle stand in for ones the control plane has not (re)sent, e.g. after it
        restarted."""
        out = dict(secrets)
        pushed = out.get(CERT_SECRET)
        chosen: m.Secret | None = None
        chosen_until = 0.0
        if pushed is not None and pushed.certificate_chain in self.keys:
            key, chosen_until = self.keys[pushed.certificate_chain]
            chosen = replace(pushed, private_key=key)
        held = self.held
        # Ours stands in when nothing usable was pushed, or what was pushed is older.
        if held is not None and (chosen is None or chosen_until < held.not_after):
            chosen = m.Secret(CERT_SECRET, held.chain, held.key)
        if chosen is not None:
            out[CERT_SECRET] = chosen
        else:
            out.pop(CERT_SECRET, None)
        if TRUST_SECRET not in out and held is not None:
            out[TRUST_SECRET] = m.Secret(TRUST_SECRET, trusted_ca=held.bundle)
        return out

    # --- renewal loop ------------------------------------------------------------------

    def kick(self) -> None:
        """Ask for a certificate now (e.g. the control plane came back and forgot ours)."""
        self._kick.set()

    def stop(self) -> None:
        self._stopped = True
        self._kick.set()

    def status(self) -> dict[str, Any]:
        held = self.held
        return {
            "identity": held.spiffe_id if held else None,
            "notAfter": held.not_after if held else None,
            "secondsToExpiry": round(held.not_after - self.clock(), 1) if held else None,
            "renewals": self.renewals,
            "failures": self.failures,
            "lastError": self.last_error or None,
        }

    async def run(self) -> None:
        import grpc

        channel = (
            grpc.aio.secure_channel(self.target, self.credentials)
            if self.credentials
            else grpc.aio.insecure_channel(self.target)
        )
        self._channel = channel
        try:
            failures = 0
            while not self._stopped:
                try:
                    held = await self._renew(channel)
                except Exception as exc:  # retried; the current certificate stays in use
                    failures += 1
                    self.failures += 1
                    self.last_error = _describe(exc)
                    # The first attempts may race the xDS stream's opening: quiet until then.
                    if failures == 3 or failures % 20 == 0:
                        log.warning("certificate request failed", error=self.last_error)
                    else:
                        log.debug("certificate request failed", error=self.last_error)
                    held_after = self.held.not_after if self.held else None
                    wake = self.timer.after_failure(self.clock(), failures, held_after)
                else:
                    failures = 0
                    self.last_error = ""
                    now = self.clock()
                    # Never faster than once a second, whatever the certificate says.
                    wake = max(now + 1.0, self.timer.after_issue(now, held.not_after))
                self._kick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), max(0.0, wake - self.clock()))
        finally:
            self._channel = None
            await channel.close()

    async def report(self, listeners: dict[str, Any]) -> None:
        """Send the TLS listeners' counters (for `gossamer get mtls-report`)."""
        if self._channel is None:
            return
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        body = json.dumps({"nodeId": self.node_id, "listeners": listeners}).encode()
        await _call(self._channel, REPORT, body, metadata)

    async def _renew(self, channel: Any) -> Held:
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        request = json.dumps({"nodeId": self.node_id}).encode()
        identity = await _call(channel, IDENTITY, request, metadata)
        spiffe_id = str(identity["spiffeId"])
        key, csr = await new_key_and_csr(spiffe_id)
        body = json.dumps({"nodeId": self.node_id, "csr": csr.decode()}).encode()
        answer = await _call(channel, SIGN, body, metadata)
        chain = str(answer["certificateChain"]).encode()
        not_before, not_after = float(answer["notBefore"]), float(answer["notAfter"])
        self.keys[chain] = (key, not_after)
        while len(self.keys) > KEYS_KEPT:
            self.keys.pop(next(iter(self.keys)))
        held = Held(
            chain,
            key,
            str(answer["trustBundle"]).encode(),
            not_before,
            not_after,
            spiffe_id,
        )
        first = self.held is None
        self.held = held
        self.renewals += 1
        log.info(
            "certificate obtained" if first else "certificate renewed",
            identity=spiffe_id,
            expires_in=round(not_after - self.clock()),
        )
        if self.on_change is not None:
            self.on_change()
        return held


async def new_key_and_csr(spiffe_id: str, timeout: float = 30.0) -> tuple[bytes, bytes]:
    """A new private key (PEM) and a CSR for it, made by a short-lived child process
    (`python -m gossamer.core.pki`), so the proxy never loads the cryptography library."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gossamer.core.pki",
        "csr",
        spiffe_id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError("making a key and CSR timed out") from None
    if proc.returncode != 0:
        raise RuntimeError(f"making a key and CSR failed: {err.decode(errors='replace')[-300:]}")
    made = json.loads(out)
    return str(made["key"]).encode(), str(made["csr"]).encode()


async def _call(channel: Any, method: str, body: bytes, metadata: Any) -> dict[str, Any]:
    call = channel.unary_unary(
        method, request_serializer=lambda x: x, response_deserializer=lambda x: x
    )
    raw = await call(body, metadata=metadata, timeout=10.0)
    answer: dict[str, Any] = json.loads(raw)
    return answer


def _describe(exc: Exception) -> str:
    import grpc

    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return repr(exc)
