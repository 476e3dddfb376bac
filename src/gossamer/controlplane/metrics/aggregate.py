"""Golden metrics per service (and version), workload and edge over sliding windows.

Pure: `Aggregator.ingest(proxy, text, now)` takes one scrape of a sidecar's
/stats/prometheus; queries read windows of 10 s, 1 min or 10 min. Counters become deltas
per proxy (the first scrape of a proxy is its baseline; a counter that went down was
reset, so its value is the delta) and land in the 10-second cell of the scrape's time.
Each entity keeps at most HISTORY cells (10 minutes), only the ones that saw traffic,
and an entity with no cell left is dropped: memory follows the traffic of the last 10
minutes, never the mesh's history. A proxy that is gone (`forget`) takes its baselines
with it.

Which side counts: a service's, version's and workload's numbers come from the inbound
side (the callee's sidecar: what the service served, every caller included); a service
with no inbound data (no sidecar, or an external service) falls back to what callers'
sidecars saw outbound. Edges come from the caller's outbound side, which knows both ends.
Success: a response that is not 5xx (no response at all, code 0, is a failure).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gossamer.controlplane.metrics import prom

STEP: Final = 10.0
HISTORY: Final = 60  # cells: 10 minutes
WINDOWS: Final = {"10s": 10.0, "1m": 60.0, "10m": 600.0}
DEFAULT_WINDOW: Final = "1m"
REQUESTS: Final = "gossamer_requests_total"
BUCKET: Final = "gossamer_request_duration_seconds_bucket"
# The sidecar's histogram bounds (seconds), as its `le` label spells them.
BOUNDS: Final = (
    "0.0005",
    "0.001",
    "0.0025",
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2.5",
    "5",
    "10",
    "+Inf",
)
_INDEX: Final = {float(le): i for i, le in enumerate(BOUNDS)}  # "1" and "1.0" alike
_SECONDS: Final = tuple(float(b) for b in BOUNDS[:-1])
UNKNOWN: Final = "unknown"
MAX_ENTITIES: Final = 10_000  # beyond this, new entities are not tracked (memory bound)

Key = tuple[str, ...]


class Cell:
    __slots__ = ("hist", "requests", "successes")

    def __init__(self) -> None:
        self.requests = 0.0
        self.successes = 0.0
        self.hist = [0.0] * len(BOUNDS)  # per bucket, not cumulative


class Timeline:
    """10-second cells of one entity, newest last (at most HISTORY of them)."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[int, Cell] = {}

    def cell(self, now: float) -> Cell:
        i = int(now // STEP)
        c = self.cells.get(i)
        if c is None:
            c = self.cells[i] = Cell()
        return c

    def prune(self, now: float) -> None:
        oldest = int(now // STEP) - HISTORY
        for i in [i for i in self.cells if i <= oldest]:
            del self.cells[i]

    def window(self, now: float, seconds: float, since: float) -> Totals:
        """Sums of the cells that end inside the window; rates over the time covered."""
        first = int((now - seconds) // STEP)  # its end is after now - seconds
        t = Totals()
        for i, c in self.cells.items():
            if i >= first:
                t.add(c)
        start = max(first * STEP, since)
        t.span = max(now - start, 1.0)
        return t


@dataclass
class Totals:
    requests: float = 0.0
    successes: float = 0.0
    hist: list[float] = field(default_factory=lambda: [0.0] * len(BOUNDS))
    span: float = STEP

    def add(self, c: Cell | Totals) -> None:
        self.requests += c.requests
        self.successes += c.successes
        for i, n in enumerate(c.hist):
            self.hist[i] += n

    def golden(self) -> dict[str, Any]:
        n = round(self.requests)
        return {
            "requests": n,
            "rps": round(self.requests / self.span, 3),
            "successRate": round(self.successes / self.requests, 4) if self.requests else None,
            "latencyMs": latency(self.hist),
        }


def quantile(q: float, hist: list[float]) -> float | None:
    """histogram_quantile as Prometheus computes it (linear within a bucket), seconds."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, n in enumerate(hist):
        if seen + n >= rank and n > 0:
            if i == len(_SECONDS):  # +Inf: the highest finite bound
                return _SECONDS[-1]
            lower = _SECONDS[i - 1] if i else 0.0
            return lower + (_SECONDS[i] - lower) * ((rank - seen) / n)
        seen += n
    return _SECONDS[-1]


def latency(hist: list[float]) -> dict[str, float] | None:
    out = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        v = quantile(q, hist)
        if v is None:
            return None
        out[name] = round(v * 1000, 3)
    return out


@dataclass
class _ProxyState:
    requests: dict[str, float] = field(default_factory=dict)  # label text -> counter
    buckets: dict[str, list[float]] = field(default_factory=dict)  # series -> cumulative
    parsed: dict[str, dict[str, str]] = field(default_factory=dict)  # label text -> labels
    seen: bool = False  # baseline taken


def _entities(lb: Mapping[str, str]) -> list[Key]:
    """The entity keys one series counts for (see the module docstring for the sides)."""
    direction = lb.get("direction")
    dns, dsvc = lb.get("destination_namespace", UNKNOWN), lb.get("destination_service", UNKNOWN)
    dwl, dver = lb.get("destination_workload", UNKNOWN), lb.get("destination_version", UNKNOWN)
    if direction not in ("inbound", "outbound") or dsvc == UNKNOWN:
        return []
    side = "in" if direction == "inbound" else "out"
    keys: list[Key] = [("service", side, dns, dsvc), ("version", side, dns, dsvc, dver)]
    if dwl != UNKNOWN:
        keys.append(("workload", side, dns, dwl, dsvc, dver))
    if side == "out":
        src = lb.get("source_service", UNKNOWN)
        if src == UNKNOWN:
            src = lb.get("source_workload", UNKNOWN)
        if src != UNKNOWN:
            keys.append(("edge", lb.get("source_namespace", UNKNOWN), src, dns, dsvc))
    return keys


class Aggregator:
    def __init__(self, started: float = 0.0) -> None:
        self.entities: dict[Key, Timeline] = {}
        self.proxies: dict[str, _ProxyState] = {}
        self.started = started  # rates never cover time before this
        self.scrapes = 0
        self.scrape_errors = 0

    # --- input -----------------------------------------------------------------------------

    def ingest(self, proxy: str, text: str, now: float) -> None:
        state = self.proxies.setdefault(proxy, _ProxyState())
        self.scrapes += 1
        baseline = not state.seen
        state.seen = True
        requests: dict[str, float] = {}
        buckets: dict[str, list[float]] = {}
        for name, raw, value in prom.samples(text, (REQUESTS, BUCKET)):
            if name == REQUESTS:
                requests[raw] = value
                continue
            series, sep, le = raw.rpartition(',le="')
            try:
                i = _INDEX.get(float(le[:-1])) if sep else None
            except ValueError:
                continue
            if i is None:
                continue
            buckets.setdefault(series, [0.0] * len(BOUNDS))[i] = value
        for raw, value in requests.items():
            before = state.requests.get(raw)
            delta = value if before is None or value < before else value - before
            if baseline or delta <= 0:
                continue
            lb = self._labels(state, raw)
            success = delta if lb.get("class") != "5xx" and lb.get("code") != "0" else 0.0
            for key in _entities(lb):
                cell = self._timeline(key, now)
                if cell is not None:
                    cell.requests += delta
                    cell.successes += success
        for series, cumulative in buckets.items():
            before_hist = state.buckets.get(series)
            if baseline:
                continue
            if before_hist is None or cumulative[-1] < before_hist[-1]:
                before_hist = [0.0] * len(BOUNDS)
            if cumulative[-1] == before_hist[-1]:
                continue
            per_bucket = []
            prev = 0.0
            for now_c, old_c in zip(cumulative, before_hist, strict=True):
                d = now_c - old_c
                per_bucket.append(max(d - prev, 0.0))
                prev = d
            for key in _entities(self._labels(state, series)):
                cell = self._timeline(key, now)
                if cell is not None:
                    for i, n in enumerate(per_bucket):
                        cell.hist[i] += n
        state.requests = requests
        state.buckets = buckets
        # Parsed labels of series the proxy no longer has go too (expired series).
        if len(state.parsed) > 2 * (len(requests) + len(buckets)):
            state.parsed = {k: v for k, v in state.parsed.items() if k in requests or k in buckets}

    def _labels(self, state: _ProxyState, raw: str) -> dict[str, str]:
        lb = state.parsed.get(raw)
        if lb is None:
            lb = state.parsed[raw] = prom.labels(raw)
        return lb

    def _timeline(self, key: Key, now: float) -> Cell | None:
        tl = self.entities.get(key)
        if tl is None:
            if len(self.entities) >= MAX_ENTITIES:
                return None
            tl = self.entities[key] = Timeline()
        return tl.cell(now)

    def forget(self, proxy: str) -> None:
        """A proxy that went away: its baselines go (its past traffic ages out)."""
        self.proxies.pop(proxy, None)

    def prune(self, now: float, live: Iterable[str] | None = None) -> None:
        if live is not None:
            keep = set(live)
            for proxy in [p for p in self.proxies if p not in keep]:
                self.forget(proxy)
        for key in list(self.entities):
            tl = self.entities[key]
            tl.prune(now)
            if not tl.cells:
                del self.entities[key]

    # --- queries ---------------------------------------------------------------------------

    def _side(self, ns: str, name: str) -> str:
        return "in" if ("service", "in", ns, name) in self.entities else "out"

    def services(
        self, now: float, window: str, namespace: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        seconds = WINDOWS[window]
        found = {(k[2], k[3]) for k in self.entities if k[0] == "service"}
        items = []
        for ns, svc in sorted(found):
            if (namespace and ns != namespace) or (name and svc != name):
                continue
            side = self._side(ns, svc)
            tl = self.entities.get(("service", side, ns, svc))
            if tl is None:
                continue
            versions = {}
            for k, vtl in self.entities.items():
                if k[0] == "version" and k[1] == side and k[2] == ns and k[3] == svc:
                    g = vtl.window(now, seconds, self.started).golden()
                    versions[k[4]] = {
                        "requests": g["requests"],
                        "rps": g["rps"],
                        "successRate": g["successRate"],
                    }
            item: dict[str, Any] = {"kind": "service", "namespace": ns, "name": svc}
            item.update(tl.window(now, seconds, self.started).golden())
            item["versions"] = dict(sorted(versions.items()))
            items.append(item)
        return items

    def workloads(
        self, now: float, window: str, namespace: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        seconds = WINDOWS[window]
        inbound = {(k[2], k[3]) for k in self.entities if k[0] == "workload" and k[1] == "in"}
        items = []
        for k, tl in sorted(self.entities.items()):
            # Once per workload: its own sidecar's view when it has one.
            if k[0] != "workload" or (k[1] == "out" and (k[2], k[3]) in inbound):
                continue
            ns, wl, svc, ver = k[2], k[3], k[4], k[5]
            if (namespace and ns != namespace) or (name and wl != name):
                continue
            item: dict[str, Any] = {"kind": "workload", "namespace": ns, "name": wl}
            item["service"] = svc
            item["version"] = ver
            item.update(tl.window(now, seconds, self.started).golden())
            items.append(item)
        return items

    def edges(
        self, now: float, window: str, namespace: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        seconds = WINDOWS[window]
        items = []
        for k, tl in sorted(self.entities.items()):
            if k[0] != "edge":
                continue
            if namespace and namespace not in (k[1], k[3]):
                continue
            if name and name != f"{k[2]}>{k[4]}":
                continue
            item: dict[str, Any] = {
                "kind": "edge",
                "source": {"namespace": k[1], "name": k[2]},
                "destination": {"namespace": k[3], "name": k[4]},
            }
            item.update(tl.window(now, seconds, self.started).golden())
            items.append(item)
        return items

    def items(
        self,
        kind: str,
        now: float,
        window: str,
        namespace: str | None = None,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        if kind == "service":
            return self.services(now, window, namespace, name)
        if kind == "workload":
            return self.workloads(now, window, namespace, name)
        return self.edges(now, window, namespace, name)

    def series(
        self, kind: str, name: str, now: float, window: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Points per STEP, oldest first; None when the entity is unknown."""
        key: Key | None = None
        versions: dict[str, Timeline] = {}
        for k in self.entities:
            if kind == "service" and k[0] == "service" and k[3] == name:
                if namespace and k[2] != namespace:
                    continue
                side = self._side(k[2], k[3])
                if k[1] != side:
                    continue
                key = k
                versions = {
                    v[4]: tl
                    for v, tl in self.entities.items()
                    if v[0] == "version" and v[1:4] == (side, k[2], k[3])
                }
                break
            if kind == "workload" and k[0] == "workload" and k[3] == name:
                if namespace and k[2] != namespace:
                    continue
                inbound = ("workload", "in", *k[2:])
                if k[1] == "out" and any(
                    e[:4] == inbound[:4] for e in self.entities if e[0] == "workload"
                ):
                    continue
                key = k
                break
            if kind == "edge" and k[0] == "edge" and f"{k[2]}>{k[4]}" == name:
                if namespace and namespace not in (k[1], k[3]):
                    continue
                key = k
                break
        if key is None:
            return None
        tl = self.entities[key]
        last = int(now // STEP)
        first = last - math.ceil(WINDOWS[window] / STEP) + 1
        points = []
        for i in range(first, last + 1):
            c = tl.cells.get(i)
            t = Totals()
            if c is not None:
                t.add(c)
            span = (now - i * STEP) if i == last else STEP
            t.span = max(span, 1.0)
            g = t.golden()
            point: dict[str, Any] = {
                "t": i * STEP,
                "rps": g["rps"],
                "successRate": g["successRate"],
                "latencyMs": g["latencyMs"],
            }
            if kind == "service":
                point["versions"] = {
                    v: {"rps": round(vc.requests / t.span, 3) if (vc := vt.cells.get(i)) else 0.0}
                    for v, vt in sorted(versions.items())
                }
            points.append(point)
        return {"step": int(STEP), "points": points}
