"""Mesh tracing and access logs → the HTTP connection manager's `tracing` and
`access_log`, plus the collector's cluster. Pure, like the rest of translate/.

Tracing (Mesh `spec.tracing`, absent: off): every HTTP listener of sidecars and gateways
gets a Zipkin tracer (HTTP_JSON, 128-bit ids, spans never shared) sampling
`spec.tracing.sampling` percent of the traces that start there, sending to
- `builtin`: the control plane's own collector (cluster `gossamer:collector`, the API's
  address, path /api/v2/spans); left out while the translator does not know the address;
- `{zipkin: URL}`: any Zipkin v2 endpoint (cluster `gossamer:zipkin`).
Access logs (Mesh `spec.accessLogs`, or the Service's own `spec.accessLogs` for its
workloads): a file logger writing one JSON object per request with the fields in
`LOG_FIELDS`, plus who is at each end: the caller's identity as verified by mTLS, and
our own as a literal.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import substitution_format_string_pb2
from envoy.config.trace.v3 import http_tracer_pb2, zipkin_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.tracing.v3 import custom_tag_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import struct_pb2, wrappers_pb2
from google.protobuf.message import Message

from gossamer.api.kinds.mesh import AccessLogs, MeshTracing, TracingBackend
from gossamer.controlplane.translate import envoy as e

BUILTIN_CLUSTER = "gossamer:collector"  # proxy/config/model.BUILTIN_COLLECTOR
ZIPKIN_CLUSTER = "gossamer:zipkin"
SPANS_PATH = "/api/v2/spans"
STDOUT = "/dev/stdout"

# Key → command operator, for both directions.
LOG_FIELDS = {
    "time": "%START_TIME%",
    "traceId": "%TRACE_ID%",
    "requestId": "%REQ(X-REQUEST-ID)%",
    "sourceAddress": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "method": "%REQ(:METHOD)%",
    "authority": "%REQ(:AUTHORITY)%",
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "durationMs": "%DURATION%",
    "bytesReceived": "%BYTES_RECEIVED%",
    "bytesSent": "%BYTES_SENT%",
    "upstreamCluster": "%UPSTREAM_CLUSTER%",
    "upstreamHost": "%UPSTREAM_HOST%",
}


@dataclass(frozen=True)
class Telemetry:
    tracing: MeshTracing | None
    collector: tuple[str, int] | None = None  # the built-in collector (the API address)

    @property
    def _target(self) -> tuple[str, str, int, str] | None:
        """(cluster, host, port, path) of where spans go, or None (no tracing)."""
        t = self.tracing
        if t is None:
            return None
        if isinstance(t.backend, TracingBackend):
            if t.backend.zipkin is None:
                return None  # refused by validation; never reached
            url = urlsplit(t.backend.zipkin)
            if url.hostname is None or url.port is None:
                return None
            return ZIPKIN_CLUSTER, url.hostname, url.port, url.path or SPANS_PATH
        if self.collector is None:
            return None
        host, port = self.collector
        return BUILTIN_CLUSTER, host, port, SPANS_PATH

    def clusters(self) -> dict[str, Message]:
        target = self._target
        if target is None:
            return {}
        name, host, port, _ = target
        cluster = e.static_cluster(name, [(host, port)])
        if not host.replace(".", "").isdigit() and ":" not in host:
            cluster.type = cluster_pb2.Cluster.STRICT_DNS
        return {name: cluster}

    def apply(
        self,
        hcm: hcm_pb2.HttpConnectionManager,
        logs: AccessLogs | None,
        tags: dict[str, str],
        direction: str,
        identity: str,
    ) -> None:
        """Tracing and access logs on one HTTP listener's connection manager. `tags`:
        literal span tags (workload, ...); `identity`: ours (SPIFFE ID)."""
        target = self._target
        if target is not None and self.tracing is not None:
            cluster, _, _, path = target
            zipkin = zipkin_pb2.ZipkinConfig(
                collector_cluster=cluster,
                collector_endpoint=path,
                collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON,
                trace_id_128bit=True,
                shared_span_context=wrappers_pb2.BoolValue(value=False),
            )
            hcm.tracing.CopyFrom(
                hcm_pb2.HttpConnectionManager.Tracing(
                    random_sampling=percent_pb2.Percent(value=self.tracing.sampling),
                    provider=http_tracer_pb2.Tracing.Http(
                        name="envoy.tracers.zipkin", typed_config=e.pack(zipkin)
                    ),
                    custom_tags=[
                        custom_tag_pb2.CustomTag(
                            tag=k, literal=custom_tag_pb2.CustomTag.Literal(value=v)
                        )
                        for k, v in sorted(tags.items())
                    ],
                )
            )
        if logs is not None and logs.enabled:
            hcm.access_log.append(access_log(logs.path or STDOUT, direction, identity))

    def fingerprint(self) -> str:
        return f"{self.tracing.model_dump_json() if self.tracing else ''}|{self.collector}"


def access_log(path: str, direction: str, identity: str) -> accesslog_pb2.AccessLog:
    fields: dict[str, str] = {"direction": direction, **LOG_FIELDS}
    if direction == "inbound":
        # The caller as mTLS proved it; the destination is this workload.
        fields["source"] = "%DOWNSTREAM_PEER_URI_SAN%"
        fields["destination"] = identity
    else:
        fields["source"] = identity
        fields["destination"] = "%UPSTREAM_PEER_URI_SAN%"
    struct = struct_pb2.Struct()
    struct.update(fields)
    config = file_pb2.FileAccessLog(
        path=path,
        log_format=substitution_format_string_pb2.SubstitutionFormatString(json_format=struct),
    )
    return accesslog_pb2.AccessLog(name="envoy.access_loggers.file", typed_config=e.pack(config))
