"""The subset of Envoy's xDS API the sidecar honours, as data.

Every field set in a received resource must be listed here, or the resource is NACKed
with the field's path: the sidecar never silently ignores configuration it cannot apply.
docs/xds-support.md is generated from this table (a test keeps them in sync).
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message

# Message full name → the fields the sidecar honours. A message not listed is accepted
# whole only if it is a well-known protobuf type (below).
SUPPORTED: Mapping[str, frozenset[str]] = {
    # --- listener ---
    "envoy.config.listener.v3.Listener": frozenset(
        {
            "name",
            "address",
            "filter_chains",
            "traffic_direction",
            "listener_filters",
            "per_connection_buffer_limit_bytes",
            "metadata",
            "stat_prefix",
        }
    ),
    "envoy.config.listener.v3.ListenerFilter": frozenset({"name", "typed_config"}),
    "envoy.config.core.v3.Address": frozenset({"socket_address"}),
    "envoy.config.core.v3.SocketAddress": frozenset({"address", "port_value", "protocol"}),
    "envoy.config.listener.v3.FilterChain": frozenset(
        {"name", "filters", "transport_socket", "filter_chain_match"}
    ),
    "envoy.config.listener.v3.FilterChainMatch": frozenset({"transport_protocol", "server_names"}),
    "envoy.config.listener.v3.Filter": frozenset({"name", "typed_config"}),
    "envoy.config.core.v3.TransportSocket": frozenset({"name", "typed_config"}),
    "envoy.config.core.v3.Metadata": frozenset({"filter_metadata"}),
    # --- HTTP connection manager ---
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": (
        frozenset(
            {
                "stat_prefix",
                "codec_type",
                "rds",
                "route_config",
                "http_filters",
                "request_timeout",
                "stream_idle_timeout",
                "common_http_protocol_options",
                "http_protocol_options",
                "use_remote_address",
                "generate_request_id",
                "max_request_headers_kb",
                "xff_num_trusted_hops",
                "skip_xff_append",
                "upgrade_configs",
                "tracing",
                "access_log",
            }
        )
    ),
    # --- tracing (Zipkin v2 JSON to a collector cluster) and access logs ---
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    ".Tracing": frozenset({"random_sampling", "provider", "custom_tags"}),
    "envoy.type.v3.Percent": frozenset({"value"}),
    "envoy.config.trace.v3.Tracing.Http": frozenset({"name", "typed_config"}),
    "envoy.config.trace.v3.ZipkinConfig": frozenset(
        {
            "collector_cluster",
            "collector_endpoint",
            "collector_endpoint_version",
            "trace_id_128bit",
            "shared_span_context",
        }
    ),
    "envoy.type.tracing.v3.CustomTag": frozenset({"tag", "literal"}),
    "envoy.type.tracing.v3.CustomTag.Literal": frozenset({"value"}),
    "envoy.config.accesslog.v3.AccessLog": frozenset({"name", "typed_config"}),
    "envoy.extensions.access_loggers.file.v3.FileAccessLog": frozenset({"path", "log_format"}),
    "envoy.config.core.v3.SubstitutionFormatString": frozenset({"json_format"}),
    "envoy.extensions.filters.network.http_connection_manager.v3.Rds": frozenset(
        {"config_source", "route_config_name"}
    ),
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter": frozenset(
        {"name", "typed_config"}
    ),
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    ".UpgradeConfig": frozenset({"upgrade_type"}),
    "envoy.config.core.v3.ConfigSource": frozenset({"ads", "resource_api_version"}),
    "envoy.config.core.v3.AggregatedConfigSource": frozenset(),
    "envoy.config.core.v3.HttpProtocolOptions": frozenset({"idle_timeout"}),
    "envoy.config.core.v3.Http1ProtocolOptions": frozenset(
        {"accept_http_10", "allow_absolute_url"}
    ),
    "envoy.extensions.filters.http.router.v3.Router": frozenset(),
    # --- resilience HTTP filters (inbound) ---
    "envoy.extensions.filters.http.fault.v3.HTTPFault": frozenset({"delay", "abort", "headers"}),
    "envoy.extensions.filters.common.fault.v3.FaultDelay": frozenset({"fixed_delay", "percentage"}),
    "envoy.extensions.filters.http.fault.v3.FaultAbort": frozenset(
        {"http_status", "grpc_status", "percentage"}
    ),
    "envoy.type.v3.FractionalPercent": frozenset({"numerator", "denominator"}),
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit": frozenset(
        {
            "stat_prefix",
            "status",
            "token_bucket",
            "filter_enabled",
            "filter_enforced",
            "response_headers_to_add",
            "enable_x_ratelimit_headers",
        }
    ),
    "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit": frozenset(
        {"stat_prefix", "token_bucket"}
    ),
    "envoy.type.v3.TokenBucket": frozenset({"max_tokens", "tokens_per_fill", "fill_interval"}),
    "envoy.config.core.v3.RuntimeFractionalPercent": frozenset({"default_value"}),
    "envoy.type.v3.HttpStatus": frozenset({"code"}),
    # --- authorization (RBAC), on the verified SPIFFE ID of the caller ---
    "envoy.extensions.filters.http.rbac.v3.RBAC": frozenset(
        {"rules", "rules_stat_prefix", "shadow_rules", "shadow_rules_stat_prefix"}
    ),
    "envoy.extensions.filters.network.rbac.v3.RBAC": frozenset(
        {"rules", "shadow_rules", "stat_prefix", "shadow_rules_stat_prefix"}
    ),
    "envoy.config.rbac.v3.RBAC": frozenset({"action", "policies"}),
    "envoy.config.rbac.v3.Policy": frozenset({"permissions", "principals"}),
    "envoy.config.rbac.v3.Permission": frozenset(
        {"and_rules", "or_rules", "any", "header", "url_path", "not_rule"}
    ),
    "envoy.config.rbac.v3.Permission.Set": frozenset({"rules"}),
    "envoy.config.rbac.v3.Principal": frozenset(
        {"and_ids", "or_ids", "any", "authenticated", "not_id"}
    ),
    "envoy.config.rbac.v3.Principal.Set": frozenset({"ids"}),
    "envoy.config.rbac.v3.Principal.Authenticated": frozenset({"principal_name"}),
    "envoy.type.matcher.v3.PathMatcher": frozenset({"path"}),
    # --- TCP proxy ---
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy": frozenset(
        {"stat_prefix", "cluster", "weighted_clusters", "idle_timeout"}
    ),
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster": frozenset(
        {"clusters"}
    ),
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight": (
        frozenset({"name", "weight"})
    ),
    # --- routes ---
    "envoy.config.route.v3.RouteConfiguration": frozenset(
        {
            "name",
            "virtual_hosts",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "validate_clusters",
        }
    ),
    "envoy.config.route.v3.VirtualHost": frozenset(
        {
            "name",
            "domains",
            "routes",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
        }
    ),
    "envoy.config.route.v3.Route": frozenset(
        {
            "name",
            "match",
            "route",
            "redirect",
            "direct_response",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "metadata",
            "per_request_buffer_limit_bytes",
        }
    ),
    "envoy.config.route.v3.RouteMatch": frozenset(
        {
            "prefix",
            "path",
            "safe_regex",
            "path_separated_prefix",
            "case_sensitive",
            "headers",
            "query_parameters",
            "grpc",
        }
    ),
    "envoy.config.route.v3.RouteMatch.GrpcRouteMatchOptions": frozenset(),
    "envoy.config.route.v3.HeaderMatcher": frozenset(
        {"name", "string_match", "present_match", "invert_match", "exact_match", "prefix_match"}
    ),
    "envoy.config.route.v3.QueryParameterMatcher": frozenset(
        {"name", "string_match", "present_match"}
    ),
    "envoy.type.matcher.v3.StringMatcher": frozenset(
        {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"}
    ),
    "envoy.type.matcher.v3.RegexMatcher": frozenset({"regex", "google_re2"}),
    "envoy.type.matcher.v3.RegexMatcher.GoogleRE2": frozenset(),
    "envoy.type.matcher.v3.RegexMatchAndSubstitute": frozenset({"pattern", "substitution"}),
    "envoy.config.route.v3.RouteAction": frozenset(
        {
            "cluster",
            "weighted_clusters",
            "prefix_rewrite",
            "regex_rewrite",
            "host_rewrite_literal",
            "timeout",
            "idle_timeout",
            "retry_policy",
            "hash_policy",
            "cluster_not_found_response_code",
            "max_stream_duration",
        }
    ),
    "envoy.config.route.v3.RouteAction.MaxStreamDuration": frozenset(
        {"max_stream_duration", "grpc_timeout_header_max"}
    ),
    "envoy.config.route.v3.WeightedCluster": frozenset({"clusters", "total_weight"}),
    "envoy.config.route.v3.WeightedCluster.ClusterWeight": frozenset(
        {
            "name",
            "weight",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
        }
    ),
    "envoy.config.route.v3.RetryPolicy": frozenset(
        {
            "retry_on",
            "num_retries",
            "per_try_timeout",
            "retry_back_off",
            "retriable_status_codes",
            "retriable_request_headers",
        }
    ),
    "envoy.config.route.v3.RetryPolicy.RetryBackOff": frozenset({"base_interval", "max_interval"}),
    "envoy.config.route.v3.RouteAction.HashPolicy": frozenset(
        {"header", "cookie", "connection_properties", "query_parameter", "terminal"}
    ),
    "envoy.config.route.v3.RouteAction.HashPolicy.Header": frozenset({"header_name"}),
    "envoy.config.route.v3.RouteAction.HashPolicy.Cookie": frozenset({"name"}),
    "envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties": frozenset({"source_ip"}),
    "envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter": frozenset({"name"}),
    "envoy.config.route.v3.RedirectAction": frozenset(
        {
            "scheme_redirect",
            "https_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "response_code",
            "strip_query",
        }
    ),
    "envoy.config.route.v3.DirectResponseAction": frozenset({"status", "body"}),
    "envoy.config.core.v3.DataSource": frozenset({"inline_bytes", "inline_string"}),
    "envoy.config.core.v3.HeaderValueOption": frozenset({"header", "append", "append_action"}),
    "envoy.config.core.v3.HeaderValue": frozenset({"key", "value"}),
    # --- clusters and endpoints ---
    "envoy.config.cluster.v3.Cluster": frozenset(
        {
            "name",
            "type",
            "eds_cluster_config",
            "connect_timeout",
            "lb_policy",
            "load_assignment",
            "circuit_breakers",
            "outlier_detection",
            "health_checks",
            "least_request_lb_config",
            "ring_hash_lb_config",
            "common_lb_config",
            "transport_socket",
            "transport_socket_matches",
            "metadata",
            "per_connection_buffer_limit_bytes",
            "common_http_protocol_options",
            "original_dst_lb_config",
        }
    ),
    "envoy.config.cluster.v3.Cluster.OriginalDstLbConfig": frozenset(
        {"use_http_header", "http_header_name"}
    ),
    "envoy.config.cluster.v3.Cluster.EdsClusterConfig": frozenset({"eds_config", "service_name"}),
    "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig": frozenset({"choice_count"}),
    "envoy.config.cluster.v3.Cluster.RingHashLbConfig": frozenset(
        {"minimum_ring_size", "maximum_ring_size"}
    ),
    "envoy.config.cluster.v3.Cluster.CommonLbConfig": frozenset({"locality_weighted_lb_config"}),
    "envoy.config.cluster.v3.Cluster.CommonLbConfig.LocalityWeightedLbConfig": frozenset(),
    "envoy.config.cluster.v3.CircuitBreakers": frozenset({"thresholds"}),
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds": frozenset(
        {"priority", "max_connections", "max_pending_requests", "max_requests", "max_retries"}
    ),
    "envoy.config.cluster.v3.OutlierDetection": frozenset(
        {
            "consecutive_5xx",
            "consecutive_gateway_failure",
            "interval",
            "base_ejection_time",
            "max_ejection_time",
            "max_ejection_percent",
            "enforcing_consecutive_5xx",
            "enforcing_consecutive_gateway_failure",
            "enforcing_success_rate",
            "success_rate_minimum_hosts",
            "success_rate_request_volume",
            "success_rate_stdev_factor",
        }
    ),
    "envoy.config.core.v3.HealthCheck": frozenset(
        {
            "timeout",
            "interval",
            "interval_jitter",
            "healthy_threshold",
            "unhealthy_threshold",
            "http_health_check",
            "tcp_health_check",
            "grpc_health_check",
        }
    ),
    "envoy.config.core.v3.HealthCheck.HttpHealthCheck": frozenset(
        {"host", "path", "expected_statuses", "method", "request_headers_to_add"}
    ),
    "envoy.type.v3.Int64Range": frozenset({"start", "end"}),
    "envoy.config.core.v3.HealthCheck.TcpHealthCheck": frozenset({"send", "receive"}),
    "envoy.config.core.v3.HealthCheck.Payload": frozenset({"text"}),
    "envoy.config.core.v3.HealthCheck.GrpcHealthCheck": frozenset({"service_name", "authority"}),
    "envoy.config.endpoint.v3.ClusterLoadAssignment": frozenset({"cluster_name", "endpoints"}),
    "envoy.config.endpoint.v3.LocalityLbEndpoints": frozenset(
        {"locality", "lb_endpoints", "load_balancing_weight", "priority"}
    ),
    "envoy.config.core.v3.Locality": frozenset({"region", "zone", "sub_zone"}),
    "envoy.config.endpoint.v3.LbEndpoint": frozenset(
        {"endpoint", "health_status", "load_balancing_weight", "metadata"}
    ),
    "envoy.config.endpoint.v3.Endpoint": frozenset({"address", "hostname"}),
    "envoy.config.cluster.v3.Cluster.TransportSocketMatch": frozenset(
        {"name", "match", "transport_socket"}
    ),
    # --- TLS: mTLS between sidecars, certificates and trust bundles by SDS (over ADS) ---
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext": frozenset(
        {"common_tls_context", "sni"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext": frozenset(
        {"common_tls_context", "require_client_certificate"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext": frozenset(
        {
            "tls_params",
            "tls_certificate_sds_secret_configs",
            "validation_context_sds_secret_config",
            "combined_validation_context",
            "alpn_protocols",
        }
    ),
    "envoy.extensions.transport_sockets.tls.v3.TlsParameters": frozenset(
        {"tls_minimum_protocol_version", "tls_maximum_protocol_version"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig": frozenset({"name", "sds_config"}),
    "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext"
    ".CombinedCertificateValidationContext": frozenset(
        {"default_validation_context", "validation_context_sds_secret_config"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext": frozenset(
        {"match_typed_subject_alt_names", "trusted_ca"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher": frozenset(
        {"san_type", "matcher"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.Secret": frozenset(
        {"name", "tls_certificate", "validation_context"}
    ),
    "envoy.extensions.transport_sockets.tls.v3.TlsCertificate": frozenset(
        {"certificate_chain", "private_key"}
    ),
    "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer": frozenset(),
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector": frozenset(),
}

# Typed configs the sidecar understands, by type URL, where an Any may appear.
KNOWN_TYPED_CONFIGS: frozenset[str] = frozenset(
    {
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "envoy.extensions.filters.http.router.v3.Router",
        "envoy.extensions.filters.http.fault.v3.HTTPFault",
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
        "envoy.extensions.filters.http.rbac.v3.RBAC",
        "envoy.extensions.filters.network.rbac.v3.RBAC",
        "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "envoy.config.trace.v3.ZipkinConfig",
        "envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
    }
)

# Accepted whole wherever they appear.
WELL_KNOWN = frozenset(
    {
        "google.protobuf.Duration",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.DoubleValue",
        "google.protobuf.StringValue",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
    }
)


class Unsupported(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_supported(message: Message, path: str) -> None:
    """Raise Unsupported naming the first field set in `message` that we do not honour."""
    from google.protobuf.any_pb2 import Any as AnyProto

    full_name = message.DESCRIPTOR.full_name
    if full_name in WELL_KNOWN:
        return
    if full_name == "google.protobuf.Any":
        assert isinstance(message, AnyProto)
        type_name = message.type_url.rsplit("/", 1)[-1]
        if type_name not in KNOWN_TYPED_CONFIGS:
            raise Unsupported(path, f"typed config {type_name} is not supported")
        check_supported(unpack_any(message), f"{path}<{type_name.rsplit('.', 1)[-1]}>")
        return
    allowed = SUPPORTED.get(full_name)
    if allowed is None:
        raise Unsupported(path, f"{full_name} is not supported")
    for descriptor, value in message.ListFields():
        name = descriptor.name
        where = f"{path}.{name}" if path else name
        if name not in allowed:
            raise Unsupported(where, "field not supported by the Gossamer sidecar")
        if descriptor.type != descriptor.TYPE_MESSAGE:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            value_field = descriptor.message_type.fields_by_name["value"]
            if value_field.type == value_field.TYPE_MESSAGE:
                for key, item in value.items():
                    check_supported(item, f"{where}[{key!r}]")
        elif descriptor.is_repeated:
            for index, item in enumerate(value):
                check_supported(item, f"{where}[{index}]")
        else:
            check_supported(value, where)


def unpack_any(message: Message) -> Message:
    """The message inside an Any, by its type URL (from the generated pool)."""
    from google.protobuf import symbol_database

    type_name = message.type_url.rsplit("/", 1)[-1]
    _import_typed_configs()
    cls = symbol_database.Default().GetSymbol(type_name)
    inner: Message = cls()
    message.Unpack(inner)
    return inner


_imported = False


def _import_typed_configs() -> None:
    # Importing the generated modules registers their messages in the symbol database.
    global _imported
    if _imported:
        return
    import envoy.config.cluster.v3.cluster_pb2
    import envoy.config.endpoint.v3.endpoint_pb2
    import envoy.config.listener.v3.listener_pb2
    import envoy.config.route.v3.route_pb2
    import envoy.config.trace.v3.zipkin_pb2
    import envoy.extensions.access_loggers.file.v3.file_pb2
    import envoy.extensions.filters.http.fault.v3.fault_pb2
    import envoy.extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2
    import envoy.extensions.filters.http.rbac.v3.rbac_pb2
    import envoy.extensions.filters.http.router.v3.router_pb2
    import envoy.extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2
    import envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2
    import envoy.extensions.filters.network.local_ratelimit.v3.local_rate_limit_pb2
    import envoy.extensions.filters.network.rbac.v3.rbac_pb2
    import envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2
    import envoy.extensions.transport_sockets.raw_buffer.v3.raw_buffer_pb2
    import envoy.extensions.transport_sockets.tls.v3.secret_pb2
    import envoy.extensions.transport_sockets.tls.v3.tls_pb2  # noqa: F401

    _imported = True


def markdown() -> str:
    """docs/xds-support.md, generated from the tables above."""
    lines = [
        "# The Envoy xDS subset the Gossamer sidecar honours",
        "",
        "Generated from `gossamer/proxy/config/support.py` by",
        "`python -m gossamer.proxy.config.support > docs/xds-support.md` (a test keeps them in",
        "sync). Any other field set in a resource makes the sidecar NACK it with the field's",
        "path: it never ignores configuration it cannot honour. The control plane only emits",
        "what is listed here, and Envoy accepts all of it.",
        "",
        "Typed configs accepted in `typed_config` fields:",
        "",
        *(f"- `{name}`" for name in sorted(KNOWN_TYPED_CONFIGS)),
        "",
        "Well-known protobuf types accepted wherever they appear: "
        + ", ".join(f"`{n}`" for n in sorted(WELL_KNOWN))
        + ".",
        "",
        "| message | fields honoured |",
        "|---|---|",
    ]
    for name in sorted(SUPPORTED):
        fields = ", ".join(f"`{f}`" for f in sorted(SUPPORTED[name])) or "(none: presence only)"
        lines.append(f"| `{name}` | {fields} |")
    lines += [
        "",
        "Semantics worth knowing:",
        "",
        "- `Cluster.lb_policy`: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV; Envoy",
        "  has no peak-EWMA, so the control plane sends LEAST_REQUEST with",
        '  `metadata.filter_metadata["gossamer"].lb = "peak_ewma"`, which the sidecar honours.',
        "- A listener may have two filter chains only as a `tls` / `raw_buffer` pair",
        "  (`filter_chain_match.transport_protocol`): permissive mTLS.",
        "- TLS certificates and trust bundles come only by SDS (`Secret` over ADS); peers are",
        "  verified by the trust bundle and by URI SAN (SPIFFE ID), never by hostname.",
        "- `Cluster.transport_socket_matches`: one TLS match, plaintext default; an endpoint",
        '  uses TLS when its `filter_metadata["envoy.transport_socket_match"]` has the values.',
        "- The last HTTP filter must be the router; `codec_type` AUTO or HTTP1.",
        "- A filter chain has one terminal network filter (HTTP connection manager or TCP",
        "  proxy), optionally preceded by a network local rate limit (TCP listeners).",
        "- RBAC (HTTP and network): actions ALLOW and DENY (LOG is NACKed); principals match",
        "  the caller's verified SPIFFE ID (`authenticated.principal_name`); HTTP permissions",
        "  match `:method` and other headers and `url_path`; on TCP, permissions other than",
        "  `any` never match. Network RBAC filters may only precede a `tcp_proxy`.",
        "- `RouteAction.timeout` defaults to 15 s as in Envoy; 0 disables it.",
        "- Filter chains matched by `server_names` (exact names) route TLS by the",
        "  ClientHello's SNI without terminating it: one `tcp_proxy` per chain, at most one",
        "  chain without `server_names` (the default; none: unmatched connections close).",
        "  A passthrough (`ORIGINAL_DST`) cluster there dials the SNI host on port 443.",
        "- `ORIGINAL_DST` clusters (egress passthrough) need `lb_policy: CLUSTER_PROVIDED` and",
        "  `original_dst_lb_config` with `use_http_header` and `http_header_name: :authority`:",
        "  the upstream is the request's host:port as the app gave it (port 80 by default).",
        "- `HttpConnectionManager.tracing`: `random_sampling` (a trace context that arrives",
        "  keeps its decision), a Zipkin provider with `collector_endpoint_version` HTTP_JSON",
        "  to `collector_cluster` + `collector_endpoint`, literal `custom_tags` only.",
        "  Incoming contexts are read from W3C `traceparent` and B3 (`b3`, `x-b3-*`); the",
        "  next hop gets `traceparent` plus the B3 style that came in (multi by default).",
        "- `access_log`: the file logger with `log_format.json_format` only; values are one",
        "  command operator (`%START_TIME%`, `%TRACE_ID%`, `%REQ(X)%`, `%RESPONSE_CODE%`,",
        "  `%RESPONSE_FLAGS%`, `%DURATION%`, `%BYTES_RECEIVED%`, `%BYTES_SENT%`,",
        "  `%DOWNSTREAM_REMOTE_ADDRESS%`, `%DOWNSTREAM_PEER_URI_SAN%`, `%UPSTREAM_CLUSTER%`,",
        "  `%UPSTREAM_HOST%`) or a literal; lines are flushed every second.",
        "- The command operator `%REQ(:AUTHORITY)%` is honoured in the response headers of",
        "  direct responses only (a forwarding route using it is NACKed).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
