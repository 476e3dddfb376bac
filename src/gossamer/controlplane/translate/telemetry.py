"""Mesh tracing and access logs → the HTTP connection manager's `tracing` and
`access_log`, plus the collector's cluster. Pure, like the rest of translate/.

Tracing (Mesh `spec.tracing`, absent: off): every HTTP listener of sidecars and gateways
gets a Zipkin tracer (HTTP_JSON, 128-bit ids, spans never shared) sampling
`spec.tracing.sampling` percent of the traces that start there, sending to
- `builtin`: the control plane's own collector (cluster `gossamer:collector`, the API's
  address, path /api/v2/spans); left out while the translator does not know the address;
- `{zipkin: URL}`: any Zipkin v2 endpoint (cluster `gossamer:zipkin`);
- `{otlp: URL}`: an OTLP/HTTP traces endpoint (OpenTelemetry provider, `http_service`,
  cluster `gossamer:otlp`).
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
from envoy.config.core.v3 import http_service_pb2, http_uri_pb2, substitution_format_string_pb2
from envoy.config.trace.v3 import http_tracer_pb2, opentelemetry_pb2, zipkin_pb2
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
OTLP_CLUSTER = "gossamer:otlp"
SPANS_PATH = "/api/v2/spans"
OTLP_PATH = "/v1/traces"
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
    collector_tls: bool = False

    @property
    def _target(self) -> tuple[str, str, int, str, str] | None:
        """(cluster, host, port, path, URL or "") of where spans go, or None (no tracing);
        a URL means OTLP."""
        t = self.tracing
        if t is None:
            return None
        if isinstance(t.backend, TracingBackend):
            otlp = t.backend.otlp
            text = otlp or t.backend.zipkin
            if text is None:
                return None  # refused by validation; never reached
            url = urlsplit(text)
            if url.hostname is None or url.port is None:
                return None
            if otlp is not None:
                return OTLP_CLUSTER, url.hostname, url.port, url.path or OTLP_PATH, otlp
            return ZIPKIN_CLUSTER, url.hostname, url.port, url.path or SPANS_PATH, ""
        if self.collector is None:
            return None
        host, port = self.collector
        return BUILTIN_CLUSTER, host, port, SPANS_PATH, ""

    def clusters(self) -> dict[str, Message]:
        target = self._target
        if target is None:
            return {}
        name, host, port, _, _ = target
        tls = name == BUILTIN_CLUSTER and self.collector_tls
        # The built-in collector over TLS: the sidecar verifies it with the bundle it
        # verifies xDS with (not an SDS secret: the API's certificate is not a mesh one).
        extra = {"metadata": e.metadata({"tls": "true"})} if tls else {}
        cluster = e.static_cluster(name, [(host, port)], **extra)
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
            cluster, _, _, path, url = target
            if url:
                provider = http_tracer_pb2.Tracing.Http(
                    name="envoy.tracers.opentelemetry",
                    typed_config=e.pack(
                        opentelemetry_pb2.OpenTelemetryConfig(
                            http_service=http_service_pb2.HttpService(
                                http_uri=http_uri_pb2.HttpUri(
                                    uri=url, cluster=cluster, timeout=e.duration(5.0)
                                )
                            )
                        )
                    ),
                )
            else:
                zipkin = zipkin_pb2.ZipkinConfig(
                    collector_cluster=cluster,
                    collector_endpoint=path,
                    collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON,
                    trace_id_128bit=True,
                    shared_span_context=wrappers_pb2.BoolValue(value=False),
                )
                provider = http_tracer_pb2.Tracing.Http(
                    name="envoy.tracers.zipkin", typed_config=e.pack(zipkin)
                )
            hcm.tracing.CopyFrom(
                hcm_pb2.HttpConnectionManager.Tracing(
                    random_sampling=percent_pb2.Percent(value=self.tracing.sampling),
                    provider=provider,
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
        tracing = self.tracing.model_dump_json() if self.tracing else ""
        return f"{tracing}|{self.collector}|{self.collector_tls}"


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
