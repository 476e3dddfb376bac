"""HTTP/1.1 proxying on uvloop protocols: client connections, upstream connections, pools.

One `HttpDownstream` per client connection carries one exchange at a time (HTTP/1.1 has
no concurrency on a connection; pipelined requests wait in the paused parser). Its
exchange state lives on the connection object itself: no per-request object besides the
parsed head. One `UpstreamConnection` per upstream TCP connection; idle ones wait in
their endpoint's `Pool` (LIFO, so the warmest is reused and the rest can time out).

Cost rules followed here (the per-request budget is a few tens of microseconds):
- one transport.write per read event: callbacks of one `feed` append to a list and the
  protocol writes it joined after the feed (a GET is one write upstream; a small
  response, head and body, one write downstream);
- no timers per request (io/clock.py), no closures or tasks per request unless a new
  upstream connection must be opened;
- heads are forwarded as received when nothing changes (protocols/http1 builders).

Back-pressure: when a transport's write buffer passes its high-water mark the other
side's reading pauses (pause_writing → pause_reading), in both directions, so a body
streams through with bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Final, cast

from gossamer.core.logs import get_logger
from gossamer.protocols.http1 import (
    ProtocolError,
    RequestHead,
    ResponseHead,
    build_request_head,
    build_response_head,
    encode_chunk,
    last_chunk,
    request_parser,
    response_parser,
)
from gossamer.proxy.context import HttpContext
from gossamer.proxy.filters import tap as _tap
from gossamer.proxy.filters.accesslog import Record
from gossamer.proxy.filters.authz import Authorizer, denied_body
from gossamer.proxy.filters.retry import (
    CONNECT_FAILURE,
    PER_TRY_TIMEOUT,
    RESET,
    backoff,
    retriable_failure,
    retriable_status,
)
from gossamer.proxy.filters.route import DIRECT, FORWARD, REQ_AUTHORITY, HeaderPlan, RouteEntry
from gossamer.proxy.filters.stats import NO_CLUSTER, RequestStats, SeriesKey
from gossamer.proxy.filters.trace import REPLACED as TRACE_REPLACED
from gossamer.proxy.io.clock import INF
from gossamer.proxy.io.replies import local_reply
from gossamer.proxy.io.tls import handshake_failed, peer_identity, san_allowed

if TYPE_CHECKING:
    from gossamer.proxy.cluster import ClusterRuntime
    from gossamer.proxy.config import model as m
    from gossamer.proxy.filters.balance import EndpointState
    from gossamer.proxy.filters.fault import FaultDecision
    from gossamer.proxy.filters.trace import Span
    from gossamer.proxy.io.listener import ListenerHandle

monotonic = time.monotonic
wallclock = time.time
log = get_logger("proxy.authz")
AUTHZ_HEADER: Final = b"x-gossamer-authz"

# Exchange states of a client connection.
IDLE: Final = 0  # between requests
ACTIVE: Final = 1  # a request is being proxied
DISCARD: Final = 2  # answered locally; waiting for the end of the request's message
TUNNEL: Final = 3  # upgraded (101): raw bytes both ways
CLOSED: Final = 4
LINGER: Final = 5  # error sent, write side shut; reading and discarding until EOF

# What the connection's one deadline means.
T_NONE: Final = 0
T_HEADER: Final = 1  # request head must complete (408)
T_IDLE: Final = 2  # keep-alive or tunnel idle
T_ROUTE: Final = 3  # the route's timeout (504)
T_LINGER: Final = 4  # end of the lingering close
T_STREAM: Final = 5  # request body stalled (the HCM's stream idle timeout; 408)

# After an error reply, keep reading (and discarding) what the client still sends for a
# moment before closing: closing with unread input makes the kernel send a reset, which
# can destroy the error reply before the client reads it (nginx's lingering close).
LINGER_SECONDS: Final = 2.0

# Why reading from the client is paused (a bit each).
P_UPSTREAM: Final = 1  # upstream is connecting or its write buffer is full
P_PIPELINE: Final = 2  # pipelined requests wait behind the current one

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
PROTO: Final = b"http"
BUFFER_LIMIT: Final = 64 * 1024  # request bytes held while the upstream connects
# A failed connect sent nothing, so it is always safe to try another endpoint (as Linkerd
# does, and Istio's default retry policy): an endpoint announced a moment before its
# listener is up, or gone a moment before EDS says so, costs no request.
CONNECT_ATTEMPTS: Final = 3
_NO_REMOVE: Final[frozenset[bytes]] = frozenset()
OVERLOADED: Final = ((b"x-gossamer-overloaded", b"true"),)


class HttpDownstream(asyncio.Protocol):
    __slots__ = (
        "active",
        "attempts",
        "cluster",
        "continue_sent",
        "ctx",
        "deadline",
        "dispatch",
        "endpoint",
        "entry",
        "eofs",
        "handle",
        "has_body",
        "head",
        "keep_alive",
        "out",
        "parser",
        "paused",
        "peer",
        "peer_identity",
        "peer_ip",
        "peer_label",
        "pending",
        "replay",
        "replay_size",
        "req_chunked",
        "req_done",
        "resp_chunked",
        "resp_plan",
        "resp_started",
        "retried",
        "retry",
        "route_deadline",
        "rstats",
        "rx",
        "s_ctx",
        "s_entry",
        "s_ep",
        "s_rs",
        "seq",
        "span",
        "started",
        "state",
        "status",
        "timer",
        "transport",
        "tries",
        "tx",
        "up_head",
        "up_out",
        "up_size",
        "upstream",
        "upstream_paused",
        "wall",
    )

    def __init__(self, handle: ListenerHandle) -> None:
        self.handle = handle
        ctx = handle.ctx
        assert isinstance(ctx, HttpContext)
        self.ctx = ctx
        self.parser = request_parser(self, limits=ctx.limits)
        self.transport: asyncio.Transport | None = None
        self.peer = b""
        self.peer_ip = ""
        # The verified SPIFFE ID of an mTLS client (another sidecar); None in plaintext.
        self.peer_identity: str | None = None
        self.peer_label = ""  # the identity as a metrics key part
        # The last request series looked up, for its (context, route, endpoint): the next
        # request on this connection to the same place reuses it without a lookup.
        self.s_ctx: HttpContext | None = None
        self.s_entry: RouteEntry | None = None
        self.s_ep: EndpointState | None = None
        self.s_rs: RequestStats | None = None
        self.state = IDLE
        self.deadline = INF
        self.timer = T_NONE
        self.paused = 0
        self.seq = 0
        self.active = False  # tunnel traffic since the last idle check
        self.out: list[bytes] = []  # bytes for the client, written after each feed
        self.up_out: list[bytes] = []  # bytes for the upstream, idem
        self.up_size = 0
        self._reset()

    def _reset(self) -> None:
        self.head: RequestHead | None = None
        self.entry: RouteEntry | None = None
        self.cluster: ClusterRuntime | None = None
        self.endpoint: EndpointState | None = None
        self.rstats: RequestStats | None = None
        self.upstream: UpstreamConnection | None = None
        self.upstream_paused = False
        self.eofs = 0  # tunnel: 1 client finished sending, 2 upstream did; 3 both: close
        self.up_head = b""
        self.resp_plan: HeaderPlan | None = None
        self.req_done = False
        self.req_chunked = False
        self.has_body = False
        self.resp_started = False
        self.resp_chunked = False
        self.keep_alive = True
        self.continue_sent = False
        self.retried = False
        self.attempts = 0
        self.retry: m.RetryPolicy | None = None  # the route's, when this request may retry
        self.replay: list[bytes] | None = None  # body bytes as sent, for a retry
        self.replay_size = 0
        self.tries = 0
        self.pending = False  # counted in the cluster's rq_pending
        self.route_deadline = INF
        self.dispatch = False  # routed; the upstream is asked for after the read is parsed
        self.status = 0
        self.started = 0.0
        # Tracing and access logs (ctx.observed): the span, the start (epoch; 0: none
        # or already reported) and body bytes received and sent.
        self.span: Span | None = None
        self.wall = 0.0
        self.rx = 0
        self.tx = 0

    # --- connection events -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else ""
        self.peer = self.peer_ip.encode()
        self.peer_identity = peer_identity(transport)
        self.peer_label = self.peer_identity or ""
        handle = self.handle
        handle.connections.add(self)
        handle.ticker.items.add(self)
        stats = handle.stats
        stats.cx_total += 1
        stats.cx_active += 1
        # The first request's head must arrive in time too (a silent connection just closes).
        self.deadline = monotonic() + self.ctx.header_timeout
        self.timer = T_HEADER

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        self.state = CLOSED
        handle = self.handle
        handle.connections.discard(self)
        handle.ticker.items.discard(self)
        handle.stats.cx_active -= 1
        if state in (ACTIVE, TUNNEL):
            up = self.upstream
            self.upstream = None
            if up is not None:
                up.down = None
                up.close()
            if state == ACTIVE:
                # The client went away mid-exchange ("DC" as in Envoy).
                self.ctx.stats.flag("DC")
                self._finish_endpoint(0, monotonic(), record=False)
                if self.rstats is not None:  # counted, as the status it got (0: none)
                    self.rstats.record(self.status, monotonic() - self.started)
                if _tap.sink is not None:  # before _observe_end, which ends the span
                    _tap.sink.offer(self, self.status, monotonic(), "DC")
                if self.wall:
                    self._observe_end(self.status, "DC", monotonic())

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state >= TUNNEL:
            if state == LINGER:
                return
            self.active = True
            up = self.upstream
            if up is not None and up.transport is not None:
                up.transport.write(data)
            return
        parser = self.parser
        if parser.paused and not self.paused & P_PIPELINE:
            # Pipelined requests: keep them in the parser, but stop reading more.
            self._pause(P_PIPELINE)
        try:
            parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        rstats = self.rstats
        if rstats is not None:
            rstats.rx += len(data)
        if self.dispatch:
            self._dispatch()
        if self.up_out:
            self._flush_up()
        if self.state == IDLE and self.timer != T_HEADER and parser.head_in_progress:
            self.deadline = monotonic() + self.ctx.header_timeout
            self.timer = T_HEADER

    def eof_received(self) -> bool | None:
        if self.state == TUNNEL:
            up = self.upstream
            if up is not None and up.transport is not None and up.transport.can_write_eof():
                up.transport.write_eof()  # half-close: the other direction may go on
                self.eofs |= 1
                if self.eofs == 3:
                    up.close()
                    return None
                return True
            return None
        if self.state == ACTIVE and self.req_done:
            self.keep_alive = False  # half-closed client: answer, then close
            return True
        with contextlib.suppress(ProtocolError):
            self.parser.feed_eof()
        return None  # closes the transport

    def pause_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None and not self.upstream_paused:
            self.upstream_paused = True
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None and self.upstream_paused:
            self.upstream_paused = False
            up.transport.resume_reading()

    def _pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and self.transport is not None and self.state != CLOSED:
                self.transport.resume_reading()

    # --- listener and timer hooks ------------------------------------------------------

    def drain(self) -> None:
        """Listener draining: close if idle, else after the current response."""
        if self.state == IDLE and not self.parser.head_in_progress:
            self.close()
        else:
            self.keep_alive = False

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and self.state != CLOSED:
            self.transport.close()

    def on_deadline(self, now: float) -> None:
        timer = self.timer
        self.deadline = INF
        self.timer = T_NONE
        if timer == T_HEADER:
            if self.state == IDLE and self.parser.head_in_progress:
                self._reply_and_close(408, "request header timeout", "SI")
            elif self.state == IDLE:
                self.close()
        elif timer == T_IDLE and self.state == TUNNEL and self.active:
            self.active = False  # the tunnel was used: check again one idle timeout later
            self.deadline = now + self.ctx.idle_timeout
            self.timer = T_IDLE
        elif timer in (T_IDLE, T_LINGER):
            self.close()
        elif timer == T_STREAM and self.state == ACTIVE:
            if self.resp_started:
                self.ctx.stats.flag("SI")
                self._finish_endpoint(408, now, flags="SI")
                self._abort_exchange()
            else:
                self._upstream_failed(408, "request body timeout", "SI", retry=False)
        elif timer == T_ROUTE and self.state == ACTIVE:
            if self.resp_started:
                self.ctx.stats.flag("UT")
                self._finish_endpoint(504, now, flags="UT")
                self._abort_exchange()
            elif self.retry is not None and now < self.route_deadline:  # the try's own
                self._upstream_failed(
                    504, "upstream per-try timeout", "UT", retry=False, cause=PER_TRY_TIMEOUT
                )
            else:
                self._upstream_failed(504, "upstream request timeout", "UT", retry=False)

    # --- request events (the parser calls these) ---------------------------------------

    def on_request_head(self, head: RequestHead) -> None:
        now = monotonic()
        ctx = self.handle.ctx
        if not isinstance(ctx, HttpContext):
            ctx = self.ctx  # the listener turned into TCP: keep its last HTTP config
        self.ctx = ctx
        self._reset()
        self.seq += 1
        self.state = ACTIVE
        self.head = head
        self.started = now
        self.deadline = INF
        self.timer = T_NONE
        self.has_body = head.chunked or bool(head.content_length)
        if ctx.observed:
            if ctx.tracer is not None:
                self.span = ctx.tracer.start(head.headers)
            if ctx.access_logs or (self.span is not None and self.span.sampled):
                self.wall = wallclock()  # reported at the end (else nothing is)
        authority = head.authority or head.host or b""
        authz = ctx.authz
        if authz is not None and self._denied(authz, head, authority):
            return
        if head.method == b"CONNECT":
            self._local(405, b"CONNECT is not supported\n", "")
            return
        if ctx.guarded and self._guard(ctx, head, now):
            return
        self._route_request(ctx, head, authority, now)

    def _route_request(
        self, ctx: HttpContext, head: RequestHead, authority: bytes, now: float
    ) -> None:
        table = ctx.table
        entry = table.route(head, authority) if table is not None else None
        if entry is None:
            self._local(404, b"no route\n", "NR")
            return
        self.entry = entry
        if entry.kind != FORWARD:
            self._local_route(entry, head, authority)
            return
        i = entry.pick(ctx.rng)
        name = entry.cluster_names[i]
        cluster = ctx.clusters.get(name)
        if cluster is None:
            self.rstats = self._series(ctx, (name, entry.name, self.peer_label, "", ""))
            self._local(503, b"cluster not found: %s\n" % name.encode(), "NC")
            return
        self.cluster = cluster
        if cluster.passthrough:
            ep = cluster.endpoint_for(authority)
        else:
            ep = cluster.pick(
                entry.hash.key(head.headers, head.path, self.peer_ip) if entry.hashing else None
            )
        if ep is None:
            self.rstats = self._series(ctx, (name, entry.name, self.peer_label, "", ""))
            self._local(503, b"no healthy upstream\n", "UH")
            return
        if ctx.request_metrics:
            rs = self.s_rs
            if (
                ep is not self.s_ep
                or entry is not self.s_entry
                or ctx is not self.s_ctx
                or (rs is None or rs.expired)
            ):
                key = (name, entry.name, self.peer_label, ep.workload, ep.version)
                rs = self._series(ctx, key)
                self.s_ctx, self.s_entry, self.s_ep, self.s_rs = ctx, entry, ep, rs
            self.rstats = rs
        cstats = cluster.stats
        if cstats.rq_active >= cluster.max_requests or cstats.rq_pending >= cluster.max_pending:
            cstats.overflow += 1
            self._local(503, b"upstream overflow (circuit breaker)\n", "UO", OVERLOADED)
            return
        ep.active += 1
        cstats.rq_active += 1
        cstats.rq_pending += 1
        self.pending = True
        self.endpoint = ep
        if entry.retry is not None:
            self._retry_setup(entry.retry, head, cluster, now)
        self.resp_plan = entry.response_plans[i]
        plan = entry.request_plans[i]
        remove = plan.remove
        host = entry.host_rewrite
        if host is None and head.host is None and head.authority is None:
            host = b"%s:%d" % (ep.address.encode(), ep.port)  # HTTP/1.0 without Host
        if head.expect_continue:
            # Like Envoy: answer 100 ourselves now, and do not forward the expectation.
            remove = remove | {b"expect"}
            if head.version == b"1.1" and self.transport is not None:
                self.transport.write(CONTINUE)
                self.continue_sent = True
        span = self.span
        sets = plan.set
        fast = plan.empty and not head.expect_continue
        if span is not None and (not fast or not span.block):
            # The trace context for the next hop, replacing the caller's trace headers.
            sets = (*sets, *span.headers())
            remove = remove | TRACE_REPLACED
            fast = False
        if fast:
            up_head = build_request_head(
                head,
                target=entry.upstream_path(head.path) if entry.rewrites else None,
                host=host,
                client_addr=self.peer if ctx.xff else None,
                proto=PROTO,
                request_id=ctx.generate_request_id,
            )
            if span is not None:  # a trace starts here: no trace header to replace
                up_head = up_head[:-2] + span.block + b"\r\n"
        else:
            up_head = build_request_head(
                head,
                target=entry.upstream_path(head.path),
                host=host,
                client_addr=self.peer if ctx.xff else None,
                proto=PROTO,
                request_id=ctx.generate_request_id,
                set_headers=sets,
                add_headers=plan.add,
                remove_headers=remove or _NO_REMOVE,
            )
        self.up_head = up_head
        self.req_chunked = head.chunked
        if self.has_body:
            # The route timeout starts when the request is complete (as in Envoy); until
            # then a body that stalls for the stream idle timeout ends the exchange.
            self.deadline = now + (entry.stream_idle or ctx.stream_idle_timeout)
            self.timer = T_STREAM
        self.up_out.append(up_head)
        self.up_size = len(up_head)
        # Not now: if the rest of this read turns out malformed (a bad chunk), the upstream
        # must not have been touched at all.
        self.dispatch = True

    def on_body(self, data: bytes) -> None:
        if self.state != ACTIVE:
            return  # discarding the body of a request answered locally
        self.rx += len(data)
        if self.req_chunked:
            data = encode_chunk(data)
        if self.timer == T_STREAM:
            entry = self.entry
            idle = entry.stream_idle if entry is not None else None
            self.deadline = monotonic() + (idle or self.ctx.stream_idle_timeout)
        replay = self.replay
        if replay is not None:
            self._keep_for_replay(replay, data)
        self.up_out.append(data)
        self.up_size += len(data)
        if self.upstream is None and self.up_size > BUFFER_LIMIT:
            self._pause(P_UPSTREAM)  # resumed when the connection is made

    def on_message_complete(self) -> None:
        state = self.state
        if state == DISCARD:
            self._end_exchange()
            return
        if state != ACTIVE:
            return
        self.req_done = True
        head = self.head
        assert head is not None
        entry = self.entry
        if self.retry is not None and not self.resp_started:
            self._arm_try_timer(monotonic(), first=True)
        elif entry is not None and entry.timeout and not self.resp_started:
            self.deadline = monotonic() + entry.timeout
            self.timer = T_ROUTE
        elif self.timer == T_STREAM:
            self.deadline = INF
            self.timer = T_NONE
        if self.req_chunked:
            end = last_chunk(head.trailers)
            self.up_out.append(end)
            if self.replay is not None:
                self._keep_for_replay(self.replay, end)
        if head.upgrade is None:
            self.parser.pause()  # the next request waits for this response

    def on_upgrade(self, data: bytes) -> None:
        # Bytes after an upgrade request: the new protocol, for the upstream.
        if not data:
            return
        if self.state == TUNNEL:
            up = self.upstream
            if up is not None and up.transport is not None:
                up.transport.write(data)
        elif self.state == ACTIVE:
            self.up_out.append(data)
            self.up_size += len(data)

    # --- upstream connection -----------------------------------------------------------

    def _dispatch(self) -> None:
        """Send the routed request: on a pooled connection, or a new one."""
        self.dispatch = False
        ep, cluster = self.endpoint, self.cluster
        if self.state != ACTIVE or ep is None or cluster is None:
            return
        up = ep.pool.take()
        if up is not None:
            self._attach(up)
        elif cluster.stats.cx_active >= cluster.max_connections:
            self._overflow(cluster, b"upstream overflow (circuit breaker: connections)\n")
        else:
            self._connect(cluster, ep)

    def _overflow(self, cluster: ClusterRuntime, reason: bytes) -> None:
        cluster.stats.overflow += 1
        self._finish_endpoint(0, monotonic(), record=False)  # not the endpoint's fault
        self._local(503, reason, "UO", OVERLOADED)

    def _attach(self, up: UpstreamConnection) -> None:
        self.upstream = up
        up.down = self
        head = self.head
        assert head is not None
        up.parser.expect_response(head.method)
        up.responded = False
        if self.paused & P_UPSTREAM:
            self._resume(P_UPSTREAM)

    def _flush_up(self) -> None:
        up = self.upstream
        if up is None or up.transport is None:
            return  # still connecting: kept (bounded by BUFFER_LIMIT + pause)
        out = self.up_out
        up.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self.up_size = 0

    def _connect(self, cluster: ClusterRuntime, ep: EndpointState) -> None:
        asyncio.get_running_loop().create_task(self._open(cluster, ep, self.seq))

    async def _open(self, cluster: ClusterRuntime, ep: EndpointState, seq: int) -> None:
        up = await open_upstream(cluster, ep)
        if up is None:
            if self.seq == seq and self.state == ACTIVE and self.endpoint is ep:
                self._connect_failed(cluster, ep)
            return
        if self.seq != seq or self.state != ACTIVE or self.endpoint is not ep or self.upstream:
            # The client moved on, or this try ended (per-try timeout) or is served by
            # another connection: keep this one warm for the next request.
            ep.pool.release(up)
            return
        self._attach(up)
        if self.up_out:
            self._flush_up()

    def _connect_failed(self, cluster: ClusterRuntime, ep: EndpointState) -> None:
        self.attempts += 1
        if self.attempts < CONNECT_ATTEMPTS and self.endpoint is ep:
            other = ep
            for _ in range(3):  # prefer another endpoint, if the balancer has one
                other = cluster.pick(None) or ep
                if other is not ep:
                    break
            if cluster.outlier.config is not None:
                cluster.record(ep, 503, monotonic())
            ep.active -= 1
            other.active += 1
            self.endpoint = other
            up = other.pool.take()
            if up is not None:
                self._attach(up)
                self._flush_up()
            else:
                self._connect(cluster, other)
            return
        self._upstream_failed(
            503, "upstream connect error", "UF", retry=False, cause=CONNECT_FAILURE
        )

    def _upstream_failed(
        self, status: int, reason: str, flags: str, retry: bool, cause: str | None = None
    ) -> None:
        """The upstream side failed before the response completed. `retry`: a reused
        connection the upstream had closed (resent once, always); `cause`: what the
        route's retry policy may retry (connect failure, reset, per-try timeout)."""
        up = self.upstream
        self.upstream = None
        if up is not None:
            up.down = None
            up.close()
        if (
            retry
            and not self.retried
            and not self.resp_started
            and not self.has_body
            and self.head is not None
            and self.head.upgrade is None
            and self.cluster is not None
            and self.endpoint is not None
        ):
            # A reused keep-alive connection the upstream had closed: the request never
            # reached it, so send it again on a fresh connection (once).
            self.retried = True
            self.up_out = [self.up_head]
            self.up_size = len(self.up_head)
            self._connect(self.cluster, self.endpoint)
            return
        now = monotonic()
        policy = self.retry
        if (
            cause is not None
            and policy is not None
            and not self.resp_started
            and retriable_failure(policy, cause)
            and self._may_retry(now)
        ):
            self._finish_endpoint(status, now, record=False)
            self._schedule_retry(now)
            return
        if self.resp_started:
            self.ctx.stats.flag(flags)
            self._finish_endpoint(status, now, flags=flags)
            self._abort_exchange()
            return
        self._finish_endpoint(status, now, record=False)
        self._local(status, reason.encode() + b"\n", flags)

    # --- inbound guards: local rate limit, fault injection --------------------------------

    def _guard(self, ctx: HttpContext, head: RequestHead, now: float) -> bool:
        """True when the request was answered here or deferred (a fault delay)."""
        bucket = ctx.ratelimit
        if bucket is not None and not bucket.take(now):
            cfg = bucket.config
            extra = [(b"retry-after", b"%d" % bucket.reset_after(now))]
            if cfg.x_ratelimit_headers:
                extra += bucket.headers(now)
            extra += [(k.encode(), v.encode()) for k, v in cfg.response_headers]
            self._local(cfg.status, b"local rate limited\n", "RL", tuple(extra))
            return True
        if ctx.fault is not None:
            decision = ctx.fault.decide(head.get)
            if decision is not None:
                if decision.delay:
                    asyncio.get_running_loop().call_later(
                        decision.delay, self._after_delay, self.seq, decision
                    )
                    return True
                self._fault_abort(decision)
                return True
        return False

    def _fault_abort(self, decision: FaultDecision) -> None:
        if decision.grpc is not None:
            extra = (
                (b"content-type", b"application/grpc"),
                (b"grpc-status", b"%d" % decision.grpc),
                (b"grpc-message", b"fault filter abort"),
            )
            self._local(200, b"", "FI", extra)
        else:
            self._local(decision.abort, b"fault filter abort\n", "FI")

    def _after_delay(self, seq: int, decision: FaultDecision) -> None:
        """The fault delay is over: abort, or route and forward what arrived meanwhile."""
        if self.seq != seq or self.state != ACTIVE or self.head is None:
            return
        self.ctx.stats.flag("DI")
        if decision.abort:
            self._fault_abort(decision)
            return
        body, size = self.up_out, self.up_size
        self.up_out, self.up_size = [], 0
        head = self.head
        self._route_request(self.ctx, head, head.authority or head.host or b"", monotonic())
        if self.state != ACTIVE:
            return  # answered locally (no route, no upstream...)
        self.up_out.extend(body)
        self.up_size += size
        if self.replay is not None:
            for chunk in body:
                self._keep_for_replay(self.replay, chunk)
        if self.req_done:
            entry = self.entry
            if self.retry is not None:
                self._arm_try_timer(monotonic(), first=True)
            elif entry is not None and entry.timeout:
                self.deadline = monotonic() + entry.timeout
                self.timer = T_ROUTE
            else:
                self.deadline, self.timer = INF, T_NONE
        if self.dispatch:
            self._dispatch()
        if self.up_out:
            self._flush_up()

    # --- retries (policy: filters/retry.py) --------------------------------------------

    def _retry_setup(
        self, policy: m.RetryPolicy, head: RequestHead, cluster: ClusterRuntime, now: float
    ) -> None:
        """A request on a route with a retry policy: may it be retried at all?"""
        if policy.methods is not None and not policy.methods.fullmatch(head.method.decode()):
            return
        if head.upgrade is not None:
            return
        if head.content_length is not None and head.content_length > policy.max_body_bytes:
            return
        self.retry = policy
        self.tries = 1
        self.replay = [] if self.has_body else None
        cluster.budget.deposit(now)

    def _keep_for_replay(self, replay: list[bytes], data: bytes) -> None:
        policy = self.retry
        self.replay_size += len(data)
        if policy is None or self.replay_size > policy.max_body_bytes:
            self.replay = None  # too big to replay: this request will not be retried
            self.retry = None if self.has_body else policy
        else:
            replay.append(data)

    def _arm_try_timer(self, now: float, first: bool) -> None:
        """The route's deadline (set once) and the current try's, whichever comes first."""
        entry = self.entry
        if first:
            timeout = entry.timeout if entry is not None else None
            self.route_deadline = now + timeout if timeout else INF
        deadline = self.route_deadline
        policy = self.retry
        if policy is not None and policy.per_try_timeout:
            deadline = min(deadline, now + policy.per_try_timeout)
        self.deadline = deadline
        self.timer = T_ROUTE if deadline < INF else T_NONE

    def _may_retry(self, now: float) -> bool:
        policy = self.retry
        cluster = self.cluster
        if policy is None or cluster is None or self.tries > policy.num_retries:
            return False
        if not self.req_done or (self.has_body and self.replay is None):
            return False
        stats = cluster.stats
        if stats.retry_active >= cluster.max_retries:
            stats.retry_overflow += 1
            return False
        if policy.budget and not cluster.budget.withdraw(now, policy):
            stats.retry_budget_exhausted += 1
            return False
        return True

    def _schedule_retry(self, now: float) -> None:
        """After _may_retry and the failed try's release: wait the backoff, then resend."""
        policy, cluster = self.retry, self.cluster
        assert policy is not None and cluster is not None
        self.tries += 1
        cluster.stats.retries += 1
        cluster.stats.retry_active += 1
        # During the backoff only the route's own deadline runs.
        self.deadline = self.route_deadline
        self.timer = T_ROUTE if self.route_deadline < INF else T_NONE
        delay = backoff(policy, self.tries - 1, self.ctx.rng)
        asyncio.get_running_loop().call_later(delay, self._retry_now, self.seq, cluster)

    def _retry_now(self, seq: int, cluster: ClusterRuntime) -> None:
        if self.seq != seq or self.state != ACTIVE or self.cluster is not cluster:
            cluster.stats.retry_active -= 1
            return
        head = self.head
        entry = self.entry
        assert head is not None and entry is not None
        ep = cluster.pick(
            entry.hash.key(head.headers, head.path, self.peer_ip) if entry.hashing else None
        )
        stats = cluster.stats
        if ep is None or stats.rq_active >= cluster.max_requests:
            stats.retry_active -= 1
            if ep is None:
                self._local(503, b"no healthy upstream\n", "UH")
            else:
                stats.overflow += 1
                self._local(503, b"upstream overflow (circuit breaker)\n", "UO", OVERLOADED)
            return
        ep.active += 1
        stats.rq_active += 1
        stats.rq_pending += 1
        self.pending = True
        self.endpoint = ep
        if self.rstats is not None:
            # The answer will come from this endpoint: count it under its workload/version.
            key = (cluster.name, entry.name, self.peer_label, ep.workload, ep.version)
            self.rstats = self._series(self.ctx, key)
        now = monotonic()
        self._arm_try_timer(now, first=False)
        # The head as first sent, plus which try this is (x-gossamer-attempt: 2, 3, ...).
        up_head = self.up_head[:-2] + b"x-gossamer-attempt: %d\r\n\r\n" % self.tries
        self.up_out = [up_head, *(self.replay or ())]
        self.up_size = sum(len(b) for b in self.up_out)
        up = ep.pool.take()
        if up is not None:
            self._attach(up)
            self._flush_up()
        elif stats.cx_active >= cluster.max_connections:
            self._overflow(cluster, b"upstream overflow (circuit breaker: connections)\n")
        else:
            self._connect(cluster, ep)

    def _retry_response(self, up: UpstreamConnection, head: ResponseHead) -> bool:
        """A response head arrived: if the policy retries it, drop it and try again."""
        policy = self.retry
        assert policy is not None
        grpc = head.get(b"grpc-status") if head.status == 200 else None
        grpc_status = int(grpc) if grpc is not None and grpc.isdigit() else None
        if not retriable_status(policy, head.status, grpc_status):
            return False
        now = monotonic()
        if not self._may_retry(now):
            return False
        self.upstream = None
        up.down = None
        up.close()  # the rest of this response is not wanted
        self._finish_endpoint(head.status, now, record=False)
        self._schedule_retry(now)
        return True

    def _abort_exchange(self) -> None:
        up = self.upstream
        self.upstream = None
        if up is not None:
            up.down = None
            up.close()
        self.state = CLOSED
        if self.transport is not None:
            self.transport.abort()

    @staticmethod
    def _series(ctx: HttpContext, key: SeriesKey) -> RequestStats | None:
        if not ctx.request_metrics:
            return None
        stats = ctx.stats
        return stats.requests.get(key) or stats.for_series(key)

    def _local_series(self) -> RequestStats:
        """The series of a reply made here, before any cluster (no route, bad request)."""
        return self.ctx.stats.for_series((NO_CLUSTER, "", self.peer_label, "", ""))

    def _finish_endpoint(
        self, status: int, now: float, record: bool = True, flags: str = ""
    ) -> None:
        """Release the endpoint's accounting for the current exchange (once)."""
        ep = self.endpoint
        cluster = self.cluster
        if ep is None or cluster is None:
            return
        self.endpoint = None
        ep.active -= 1
        cstats = cluster.stats
        cstats.rq_active -= 1
        if self.pending:
            self.pending = False
            cstats.rq_pending -= 1
        if self.tries > 1:
            cstats.retry_active -= 1  # this try was a retry, and it is over
        # Status 0: the client went away; says nothing about the endpoint's health.
        if status and cluster.outlier.config is not None:
            cluster.record(ep, status, now)
        if status and cluster.observe_latency:
            ep.observe_rtt(now - self.started, now)
        if record and self.rstats is not None:
            self.rstats.record(status, now - self.started)
        if record and _tap.sink is not None:
            _tap.sink.offer(self, status, now, flags, ep)
        if record and self.wall:
            self._observe_end(status, flags, now, ep.address, ep.port)

    def _observe_end(
        self, status: int, flags: str, now: float, address: str = "", port: int = 0
    ) -> None:
        """The exchange is over: its span to the exporter, its line to the access logs."""
        wall, self.wall = self.wall, 0.0
        head = self.head
        if head is None:
            return
        ctx = self.ctx
        span = self.span  # kept for the tap (filters/tap.py) until the next request
        cluster = self.cluster.name if self.cluster is not None else ""
        duration = now - self.started
        if span is not None and ctx.tracer is not None:
            entry = self.entry
            ctx.tracer.finish(
                span,
                duration,
                head.method,
                head.path,
                head.authority or head.host or b"",
                status,
                flags,
                entry.name if entry is not None else "",
                self.peer_ip,
                self.peer_identity,
                cluster,
                head.request_id,
            )
        if ctx.access_logs:
            trace_id = span.trace_id.decode() if span is not None and span.trace_id else None
            upstream = f"{address}:{port}" if address else ""
            record = Record(self, wall, duration, status, flags, trace_id, cluster, upstream)
            for logger in ctx.access_logs:
                logger.log(record)

    # --- responses ---------------------------------------------------------------------

    def response_complete(self, up: UpstreamConnection, reusable: bool) -> None:
        now = monotonic()
        out = self.out
        transport = self.transport
        if out and transport is not None:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        self._finish_endpoint(self.status, now)
        self.upstream = None
        up.down = None
        if self.upstream_paused:
            self.upstream_paused = False
            if up.transport is not None:
                up.transport.resume_reading()
        pool = up.ep.pool
        if reusable and self.req_done and up.transport is not None and not pool.retired:
            up.idle_since = now
            pool.idle.append(up)  # back to the pool (Pool.release, inlined)
        else:
            up.close()
        if not self.req_done or not self.keep_alive or self.handle.draining:
            self.state = CLOSED
            if transport is not None:
                transport.close()
            return
        self._end_exchange()

    def start_tunnel(self, up: UpstreamConnection) -> None:
        """The upstream accepted the upgrade (101): relay raw bytes both ways from now."""
        out = self.out
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            out.clear()
        self._finish_endpoint(101, monotonic())
        self.state = TUNNEL
        self.timer = T_IDLE  # the HCM idle timeout, counted from the last traffic
        self.deadline = monotonic() + self.ctx.idle_timeout
        if self.up_out:
            self._flush_up()

    def _end_exchange(self) -> None:
        self.state = IDLE  # per-exchange fields are reset by the next on_request_head
        self.deadline = monotonic() + self.ctx.idle_timeout
        self.timer = T_IDLE
        if self.paused:
            self._resume(P_UPSTREAM | P_PIPELINE)
        parser = self.parser
        if parser.paused:
            if parser.idle:
                parser.resume()  # nothing queued: just unpause
            else:
                # Pipelined requests are queued in the parser: deliver them from the
                # loop, not from inside the upstream callbacks that got us here.
                asyncio.get_running_loop().call_soon(self._resume_parser)

    def _resume_parser(self) -> None:
        if self.state == CLOSED:
            return
        try:
            self.parser.resume()
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        if self.dispatch:
            self._dispatch()
        if self.up_out:
            self._flush_up()

    # --- local replies -----------------------------------------------------------------

    def _local(
        self, status: int, body: bytes, flags: str, extra: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Answer the current request ourselves (no route, no upstream, errors...)."""
        head = self.head
        assert head is not None
        now = monotonic()
        ctx = self.ctx
        stats = ctx.stats
        if flags:
            stats.flag(flags)
        if ctx.request_metrics:
            rstats = self.rstats or self._local_series()
            rstats.record(status, now - self.started)
        if _tap.sink is not None:
            _tap.sink.offer(self, status, now, flags)
        if self.wall:
            self.tx += len(body)
            self._observe_end(status, flags, now)
        plan = self.resp_plan
        if plan is not None and not plan.empty:
            if plan.dynamic:  # %REQ(:AUTHORITY)% in a direct response's headers
                authority = head.authority or head.host or b""
                extra = (
                    *extra,
                    *((k, v.replace(REQ_AUTHORITY, authority)) for k, v in (*plan.set, *plan.add)),
                )
            else:
                extra = (*extra, *plan.set, *plan.add)
        # The connection stays open only if the request's message is (or will be) whole.
        keep = (
            head.keep_alive
            and not self.handle.draining
            and self.keep_alive
            and head.upgrade is None
            and head.method != b"CONNECT"  # the parser has left HTTP behind
            and (self.req_done or not self.has_body)
            and not (self.continue_sent is False and head.expect_continue and self.has_body)
        )
        data = local_reply(status, body, flags, keep, head.method == b"HEAD", head.version, extra)
        up = self.upstream
        self.upstream = None
        if up is not None:
            up.down = None
            up.close()
        if self.out:  # e.g. an interim response already relayed
            data = b"".join(self.out) + data
            self.out.clear()
        self.up_out.clear()
        self.up_size = 0
        if self.transport is not None:
            self.transport.write(data)
        if not keep:
            self._linger()
            return
        if self.req_done:
            self._end_exchange()
        else:
            self.state = DISCARD  # on_message_complete (right after) ends the exchange

    def _denied(self, authz: Authorizer, head: RequestHead, authority: bytes) -> bool:
        """Authorization at the destination: answer 403 when the policies refuse."""
        identity = self.peer_identity
        refused = authz.check(identity, head, authority)
        if refused is None:
            if authz.shadow:
                would = authz.check_shadow(identity, head, authority)
                if would is not None:
                    authz.count(True, identity)
                    log.info(
                        "shadow authz would deny",
                        policy=would,
                        source=identity or "unauthenticated",
                        destination=authz.destination,
                        method=head.method.decode("latin-1"),
                        path=head.path.decode("latin-1"),
                    )
            return False
        authz.count(False, identity)
        header = b"denied policy=" + refused.encode()
        self._local(403, denied_body(refused, identity, head), "RBAC", ((AUTHZ_HEADER, header),))
        return True

    def _local_route(self, entry: RouteEntry, head: RequestHead, authority: bytes) -> None:
        plan = entry.response_plans[0]
        self.resp_plan = plan
        if entry.kind == DIRECT:
            self._local(entry.direct_status, entry.direct_body, "")
        else:
            assert entry.redirect is not None
            location = entry.redirect_location(head, authority)
            self._local(entry.redirect.status, b"", "", ((b"location", location),))

    def _reply_and_close(self, status: int, reason: str, flags: str) -> None:
        self.ctx.stats.flag(flags)
        if self.ctx.request_metrics:
            self._local_series().record(status, 0.0)
        t = self.transport
        if t is None or self.state == CLOSED:
            return
        t.write(local_reply(status, reason.encode() + b"\n", flags, False))
        self._linger()

    def _linger(self) -> None:
        """Close after an error reply without losing it (see LINGER_SECONDS)."""
        t = self.transport
        if t is None or self.state == CLOSED:
            return
        if not t.can_write_eof():
            self.close()
            self.state = CLOSED
            return
        t.write_eof()
        self.state = LINGER
        self.deadline = monotonic() + LINGER_SECONDS
        self.timer = T_LINGER
        if self.paused:
            self.paused = 0
            t.resume_reading()

    def _protocol_error(self, exc: ProtocolError) -> None:
        if self.state == ACTIVE:
            # Broken body framing mid-request: the upstream got part of it; end both.
            self._finish_endpoint(exc.status, monotonic(), flags=exc.flags)
            if self.resp_started:
                self.ctx.stats.flag(exc.flags)
                self._abort_exchange()
                return
            up = self.upstream
            self.upstream = None
            if up is not None:
                up.down = None
                up.close()
        self.up_out.clear()
        self._reply_and_close(exc.status, exc.reason, exc.flags)


class UpstreamConnection(asyncio.Protocol):
    """One connection to an upstream endpoint; handles the responses coming back."""

    __slots__ = (
        "cluster",
        "down",
        "ep",
        "idle_since",
        "keep_alive",
        "parser",
        "responded",
        "rhead",
        "tls_host",
        "transport",
        "tunnel",
    )

    def __init__(self, ep: EndpointState, cluster: ClusterRuntime) -> None:
        self.ep = ep
        self.cluster = cluster
        self.transport: asyncio.Transport | None = None
        self.parser = response_parser(self)
        self.down: HttpDownstream | None = None
        self.rhead: ResponseHead | None = None
        self.idle_since = 0.0
        self.responded = False  # bytes of a response arrived since the last request
        self.keep_alive = True
        self.tunnel = False
        # TLS: the server name dialled, until the session is kept for resumption.
        self.tls_host: str | None = None

    @property
    def closed(self) -> bool:
        t = self.transport
        return t is None or t.is_closing()

    def close(self) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        stats = self.cluster.stats
        stats.cx_total += 1
        stats.cx_active += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.cluster.stats.cx_active -= 1
        transport = self.transport
        self.transport = None
        down = self.down
        if down is None:
            return  # idle (the pool skips closed connections) or already detached
        if self.tunnel:
            self.down = None
            down.upstream = None
            down.close()
            return
        with contextlib.suppress(ProtocolError):
            self.parser.feed_eof()  # may complete a body delimited by the close
        if self.down is not None:
            # Closed before the response completed: a reset, or a stale pooled connection.
            reused = not self.responded and transport is not None
            down._upstream_failed(502, "upstream connection closed", "UC", reused, RESET)

    def data_received(self, data: bytes) -> None:
        down = self.down
        if down is None:
            self.close()  # bytes on an idle connection: not a response to anything
            return
        if self.tunnel:
            down.active = True
            if down.transport is not None:
                down.transport.write(data)
            return
        self.responded = True
        rstats = down.rstats
        if rstats is not None:
            rstats.tx += len(data)
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            if self.down is not None:
                self.down._upstream_failed(502, exc.reason, exc.flags or "UPE", retry=False)
            self.close()
            return
        down = self.down
        if down is not None and down.out and down.transport is not None:
            out = down.out
            down.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def eof_received(self) -> bool | None:
        down = self.down
        t = down.transport if self.tunnel and down is not None else None
        if down is not None and t is not None and t.can_write_eof():
            t.write_eof()  # half-close: pass the FIN on
            down.eofs |= 2
            if down.eofs == 3:
                down.close()
                return None
            return True
        return None

    def pause_writing(self) -> None:
        down = self.down
        if down is not None:
            down._pause(P_UPSTREAM)

    def resume_writing(self) -> None:
        down = self.down
        if down is not None:
            down._resume(P_UPSTREAM)

    # --- response events ---------------------------------------------------------------

    def on_interim_response(self, head: ResponseHead) -> None:
        down = self.down
        if down is None or down.head is None or down.head.version != b"1.1":
            return
        if head.status == 100 and down.continue_sent:
            return
        down.out.append(build_response_head(head))

    def on_response_head(self, head: ResponseHead) -> None:
        down = self.down
        assert down is not None and down.head is not None
        if down.pending:
            down.pending = False
            self.cluster.stats.rq_pending -= 1
        if down.retry is not None and down._retry_response(self, head):
            return  # discarded; another try follows
        self.rhead = head
        dhead = down.head
        down.resp_started = True
        down.status = head.status
        version = dhead.version
        keep = (
            dhead.keep_alive
            and down.keep_alive
            and down.req_done
            and dhead.upgrade is None  # the request parser has left HTTP behind
            and not down.handle.draining
        )
        plan = down.resp_plan
        if plan is None or plan.empty:
            data = build_response_head(head, keep_alive=keep, client_version=version)
        else:
            data = build_response_head(
                head,
                keep_alive=keep,
                client_version=version,
                set_headers=plan.set,
                add_headers=plan.add,
                remove_headers=plan.remove,
            )
        # response_keeps_alive(), inlined: no framing left for a chunked body to HTTP/1.0.
        down.keep_alive = head.status == 101 or (
            keep and not head.body_until_eof and not (head.chunked and version == b"1.0")
        )
        down.resp_chunked = head.chunked and version != b"1.0"
        self.keep_alive = head.keep_alive
        down.out.append(data)

    def on_body(self, data: bytes) -> None:
        down = self.down
        if down is not None:
            down.tx += len(data)
            down.out.append(encode_chunk(data) if down.resp_chunked else data)

    def on_message_complete(self) -> None:
        down = self.down
        head = self.rhead
        if down is None or head is None:
            return
        if head.status == 101:
            self.tunnel = True
            down.start_tunnel(self)
            return
        if down.resp_chunked:
            down.out.append(last_chunk(head.trailers))
        self.rhead = None
        if self.tls_host is not None:
            self._remember_session()
        down.response_complete(self, self.keep_alive)

    def _remember_session(self) -> None:
        # After a response, TLS 1.3 session tickets have arrived: keep one to resume with.
        host, self.tls_host = self.tls_host, None
        tls = self.cluster.tls
        t = self.transport
        if host is not None and tls is not None and t is not None:
            ssl_object = t.get_extra_info("ssl_object")
            if ssl_object is not None:
                tls.context.remember(host, ssl_object)

    def on_upgrade(self, data: bytes) -> None:
        down = self.down
        if data and down is not None and down.transport is not None:
            down.transport.write(data)


class Pool:
    """Idle keep-alive connections to one endpoint, most recently used first."""

    __slots__ = ("cluster", "ep", "idle", "retired")

    def __init__(self, ep: EndpointState, cluster: ClusterRuntime) -> None:
        self.ep = ep
        self.cluster = cluster
        self.idle: list[UpstreamConnection] = []
        self.retired = False  # the endpoint left the config: connections close when done

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            up = idle.pop()
            t = up.transport
            if t is not None and not t.is_closing():
                return up
        return None

    def release(self, up: UpstreamConnection) -> None:
        if up.closed or self.retired:
            up.close()
            return
        up.idle_since = monotonic()
        self.idle.append(up)

    def close_idle(self, retire: bool = False) -> None:
        self.retired = self.retired or retire
        idle, self.idle = self.idle, []
        for up in idle:
            up.close()

    def sweep(self, now: float, idle_limit: float) -> None:
        """Close connections idle for longer than the cluster's idle timeout."""
        if not self.idle:
            return
        keep = []
        for up in self.idle:
            if up.closed:
                continue
            if now - up.idle_since > idle_limit:
                up.close()
            else:
                keep.append(up)
        self.idle = keep


async def open_upstream(cluster: ClusterRuntime, ep: EndpointState) -> UpstreamConnection | None:
    """A new connection to `ep`, or None (counted as a connect failure) on error/timeout.

    A sidecar-backed endpoint gets mTLS, and its certificate must carry one of the
    cluster's accepted SPIFFE IDs; without TLS material it is not contacted at all.
    """
    loop = asyncio.get_running_loop()
    if not ep.tls:
        try:
            async with asyncio.timeout(cluster.config.connect_timeout):
                _, up = await loop.create_connection(
                    lambda: UpstreamConnection(ep, cluster), ep.address, ep.port
                )
        except (OSError, TimeoutError):
            cluster.stats.connect_fail += 1
            return None
        return up
    tls = cluster.tls
    stats = cluster.stats
    if tls is None:
        stats.connect_fail += 1
        stats.tls_failures += 1
        return None
    host = tls.server_hostname(ep.address, ep.port)
    try:
        async with asyncio.timeout(cluster.config.connect_timeout):
            transport, up = await loop.create_connection(
                lambda: UpstreamConnection(ep, cluster),
                ep.address,
                ep.port,
                ssl=tls.context,
                server_hostname=host,
                ssl_handshake_timeout=cluster.config.connect_timeout,
            )
    except (OSError, TimeoutError, ValueError) as exc:
        stats.connect_fail += 1
        if handshake_failed(exc):
            stats.tls_failures += 1
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    stats.tls_handshakes += 1
    if ssl_object is not None and ssl_object.session_reused:
        stats.tls_resumed += 1
    if not san_allowed(peer_identity(transport), tls.verify_sans):
        stats.connect_fail += 1
        stats.tls_failures += 1
        up.close()
        return None
    up.tls_host = host
    return up
