"""xDS protobufs → the sidecar's own config objects. The only module that reads protobufs.

Each `compile_*` function checks the resource against the supported subset first
(support.check_supported) and raises ConfigError naming the resource, the field and the
reason; the ADS client turns that into a NACK and keeps the last good config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from gossamer.proxy.config import model as m
from gossamer.proxy.config.support import Unsupported, check_supported, unpack_any

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HTTP_RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "envoy.extensions.filters.network.rbac.v3.RBAC"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
RAW_BUFFER = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
SOCKET_MATCH = "envoy.transport_socket_match"


class ConfigError(ValueError):
    """A resource the sidecar cannot honour; the message becomes the NACK's error_detail."""

    def __init__(self, kind: str, name: str, path: str, reason: str) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"{kind} {name!r}: {where}{reason}")


def _check(kind: str, message: Message) -> None:
    name = getattr(message, "name", "") or getattr(message, "cluster_name", "")
    try:
        check_supported(message, "")
    except Unsupported as exc:
        raise ConfigError(kind, name, exc.path, exc.reason) from None


def seconds(duration: Duration, default: float | None = None) -> float | None:
    if duration.seconds == 0 and duration.nanos == 0:
        return default
    return float(duration.seconds + duration.nanos / 1e9)


def _has(message: Message, field: str) -> bool:
    return bool(message.HasField(field))


# --- matchers ----------------------------------------------------------------------------


def _regex(pattern: str, kind: str, name: str, path: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(kind, name, path, f"invalid regex {pattern!r}: {exc}") from None


def string_match(sm: Any, kind: str, name: str, path: str, invert: bool = False) -> m.StringMatch:
    which = sm.WhichOneof("match_pattern")
    if which is None:
        raise ConfigError(kind, name, path, "string matcher without a pattern")
    if which == "safe_regex":
        pattern = sm.safe_regex.regex
        return m.StringMatch(
            "regex", pattern, False, _regex(pattern, kind, name, path + ".safe_regex"), invert
        )
    kind_: m.StringMatchKind = which  # one of exact, prefix, suffix, contains
    return m.StringMatch(kind_, getattr(sm, which), sm.ignore_case, None, invert)


def _header_match(hm: Any, kind: str, name: str, path: str) -> m.HeaderMatch:
    which = hm.WhichOneof("header_match_specifier")
    header = hm.name.lower()
    if which == "string_match":
        return m.HeaderMatch(
            header, string_match(hm.string_match, kind, name, path, hm.invert_match)
        )
    if which == "present_match":
        present = hm.present_match != hm.invert_match
        return m.HeaderMatch(header, m.StringMatch("present", invert=not present))
    if which in ("exact_match", "prefix_match"):
        legacy: m.StringMatchKind = "exact" if which == "exact_match" else "prefix"
        return m.HeaderMatch(
            header, m.StringMatch(legacy, getattr(hm, which), invert=hm.invert_match)
        )
    if which is None:  # Envoy: no specifier means "present"
        return m.HeaderMatch(header, m.StringMatch("present", invert=hm.invert_match))
    raise ConfigError(kind, name, f"{path}.{which}", "header match kind not supported")


def _route_match(rm: Any, kind: str, name: str, path: str) -> m.RouteMatch:
    which = rm.WhichOneof("path_specifier")
    case_sensitive = rm.case_sensitive.value if _has(rm, "case_sensitive") else True
    headers = tuple(
        _header_match(h, kind, name, f"{path}.headers[{i}]") for i, h in enumerate(rm.headers)
    )
    query = []
    for i, q in enumerate(rm.query_parameters):
        qpath = f"{path}.query_parameters[{i}]"
        if q.HasField("string_match"):
            query.append(m.QueryMatch(q.name, string_match(q.string_match, kind, name, qpath)))
        else:
            query.append(m.QueryMatch(q.name, m.StringMatch("present")))
    common = {
        "case_sensitive": case_sensitive,
        "headers": headers,
        "query": tuple(query),
        "grpc_only": rm.HasField("grpc"),
    }
    if which == "prefix":
        return m.RouteMatch("prefix", rm.prefix, **common)
    if which == "path":
        return m.RouteMatch("exact", rm.path, **common)
    if which == "path_separated_prefix":
        return m.RouteMatch("path_separated_prefix", rm.path_separated_prefix, **common)
    if which == "safe_regex":
        pattern = rm.safe_regex.regex
        compiled = _regex(pattern, kind, name, f"{path}.safe_regex")
        return m.RouteMatch("regex", pattern, compiled, **common)
    raise ConfigError(kind, name, path, "route match needs prefix, path or safe_regex")


# --- headers -----------------------------------------------------------------------------


def _mutation(to_add: Iterable[Any], to_remove: Iterable[str]) -> m.HeaderMutation:
    set_: list[tuple[str, str]] = []
    add: list[tuple[str, str]] = []
    for option in to_add:
        key, value = option.header.key.lower(), option.header.value
        # APPEND_IF_EXISTS_OR_ADD (0) appends; OVERWRITE_IF_EXISTS_OR_ADD (2) replaces.
        append = option.append.value if option.HasField("append") else option.append_action == 0
        (add if append else set_).append((key, value))
    return m.HeaderMutation(tuple(h.lower() for h in to_remove), tuple(set_), tuple(add))


def _mutations(msg: Any) -> tuple[m.HeaderMutation, m.HeaderMutation]:
    return (
        _mutation(msg.request_headers_to_add, msg.request_headers_to_remove),
        _mutation(msg.response_headers_to_add, msg.response_headers_to_remove),
    )


# --- routes ------------------------------------------------------------------------------


def _cumulative(weights: Iterable[int]) -> tuple[int, ...]:
    total, out = 0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


# The conditions the retry filter implements: model.RetryOn is the one list.
_RETRY_ON = frozenset(get_args(m.RetryOn))


def _retry(rp: Any, kind: str, name: str, path: str) -> m.RetryPolicy:
    retry_on = frozenset(x.strip() for x in rp.retry_on.split(",") if x.strip())
    for condition in sorted(retry_on - _RETRY_ON):
        raise ConfigError(kind, name, f"{path}.retry_on", f"condition {condition!r} not supported")
    base = seconds(rp.retry_back_off.base_interval, 0.025) or 0.025
    methods = None
    for i, hm in enumerate(rp.retriable_request_headers):
        where = f"{path}.retriable_request_headers[{i}]"
        match = _header_match(hm, kind, name, where)
        if match.name != ":method" or match.match.kind not in ("regex", "exact"):
            raise ConfigError(kind, name, where, "only a :method exact or regex match is supported")
        pattern = match.match.value if match.match.kind == "regex" else re.escape(match.match.value)
        methods = _regex(pattern, kind, name, where)
    return m.RetryPolicy(
        retry_on=retry_on,
        num_retries=rp.num_retries.value if rp.HasField("num_retries") else 1,
        per_try_timeout=seconds(rp.per_try_timeout),
        retriable_status_codes=frozenset(rp.retriable_status_codes),
        base_interval=base,
        max_interval=seconds(rp.retry_back_off.max_interval, base * 10) or base * 10,
        methods=methods,
    )


def _with_budget(
    retry: m.RetryPolicy, meta: Mapping[str, Any], buffer_limit: int | None
) -> m.RetryPolicy:
    """The route's `gossamer` metadata carries the retry budget (Envoy has no rate-based
    budget); per_request_buffer_limit_bytes bounds the bodies buffered for replay."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if buffer_limit is not None:
        changes["max_body_bytes"] = buffer_limit
    if meta.get("retry_budget") == "off":
        changes["budget"] = False
    for key, field in (
        ("retry_budget_percent", "budget_percent"),
        ("retry_budget_min_per_second", "min_retries_per_second"),
        ("retry_budget_window", "budget_window"),
    ):
        if key in meta:
            changes[field] = float(meta[key])
    return replace(retry, **changes) if changes else retry


def _hash_policy(hp: Any) -> m.HashPolicy:
    which = hp.WhichOneof("policy_specifier")
    if which == "header":
        return m.HashPolicy("header", hp.header.header_name.lower(), hp.terminal)
    if which == "cookie":
        return m.HashPolicy("cookie", hp.cookie.name, hp.terminal)
    if which == "query_parameter":
        return m.HashPolicy("query", hp.query_parameter.name, hp.terminal)
    return m.HashPolicy("source_ip", "", hp.terminal)


def _route_action(ra: Any, kind: str, name: str, path: str) -> m.RouteAction:
    which = ra.WhichOneof("cluster_specifier")
    if which == "cluster":
        clusters: tuple[m.WeightedCluster, ...] = (m.WeightedCluster(ra.cluster, 1),)
    elif which == "weighted_clusters":
        clusters = tuple(
            m.WeightedCluster(c.name, c.weight.value, *_mutations(c))
            for c in ra.weighted_clusters.clusters
        )
        if not clusters or sum(c.weight for c in clusters) <= 0:
            raise ConfigError(kind, name, f"{path}.weighted_clusters", "weights sum to 0")
    else:
        raise ConfigError(kind, name, path, "route action needs cluster or weighted_clusters")
    regex_rewrite = None
    if ra.HasField("regex_rewrite"):
        pattern = _regex(ra.regex_rewrite.pattern.regex, kind, name, f"{path}.regex_rewrite")
        regex_rewrite = (pattern, ra.regex_rewrite.substitution)
    timeout = seconds(ra.timeout, None) if ra.HasField("timeout") else 15.0  # Envoy's default
    if ra.HasField("max_stream_duration") and ra.max_stream_duration.HasField(
        "max_stream_duration"
    ):
        timeout = seconds(ra.max_stream_duration.max_stream_duration, timeout)
    return m.RouteAction(
        clusters=clusters,
        total_weight=sum(c.weight for c in clusters),
        prefix_rewrite=ra.prefix_rewrite or None,
        regex_rewrite=regex_rewrite,
        host_rewrite=ra.host_rewrite_literal or None,
        timeout=timeout,
        idle_timeout=seconds(ra.idle_timeout) if ra.HasField("idle_timeout") else None,
        retry=_retry(ra.retry_policy, kind, name, f"{path}.retry_policy")
        if ra.HasField("retry_policy")
        else None,
        hash_policies=tuple(_hash_policy(h) for h in ra.hash_policy),
        cumulative=_cumulative(c.weight for c in clusters),
    )


def _redirect(rd: Any) -> m.Redirect:
    codes = {0: 301, 1: 302, 2: 303, 3: 307, 4: 308}
    scheme = "https" if rd.https_redirect else (rd.scheme_redirect or None)
    return m.Redirect(
        status=codes.get(rd.response_code, 301),
        scheme=scheme,
        host=rd.host_redirect or None,
        port=rd.port_redirect or None,
        path=rd.path_redirect or None,
        prefix_rewrite=rd.prefix_rewrite or None,
    )


def _route(r: Any, kind: str, name: str, path: str) -> m.Route:
    match = _route_match(r.match, kind, name, f"{path}.match")
    which = r.WhichOneof("action")
    action: m.RouteAction | m.DirectResponse | m.Redirect
    if which == "route":
        action = _route_action(r.route, kind, name, f"{path}.route")
    elif which == "direct_response":
        body = r.direct_response.body
        text = body.inline_bytes or body.inline_string.encode()
        action = m.DirectResponse(r.direct_response.status, text)
    elif which == "redirect":
        action = _redirect(r.redirect)
    else:
        raise ConfigError(kind, name, path, "route needs route, redirect or direct_response")
    raw: dict[str, Any] = {}
    if r.HasField("metadata") and "gossamer" in r.metadata.filter_metadata:
        raw = _struct(r.metadata.filter_metadata["gossamer"])
    meta = {k: str(v) for k, v in raw.items()}
    if isinstance(action, m.RouteAction) and action.retry is not None:
        from dataclasses import replace

        limit = (
            r.per_request_buffer_limit_bytes.value
            if r.HasField("per_request_buffer_limit_bytes")
            else None
        )
        action = replace(action, retry=_with_budget(action.retry, raw, limit))
    req, resp = _mutations(r)
    if which != "direct_response" and any("%REQ(" in v for _, v in (*resp.set, *resp.add)):
        raise ConfigError(
            kind, name, f"{path}.response_headers_to_add", "%REQ(...)% only in direct responses"
        )
    return m.Route(r.name, match, action, req, resp, dict(meta))


def _scalar(value: Any) -> str:
    # Struct values: match "true" and True alike (YAML and JSON writers differ).
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _struct(struct: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    result: dict[str, Any] = MessageToDict(struct)
    return result


def route_table(name: str, virtual_hosts: Iterable[m.VirtualHost]) -> m.RouteTable:
    """Precompute the domain lookup (exact, *.suffix, prefix.*, *) of a route table."""
    vhs = tuple(virtual_hosts)
    exact: dict[str, m.VirtualHost] = {}
    suffixes: list[tuple[str, m.VirtualHost]] = []
    prefixes: list[tuple[str, m.VirtualHost]] = []
    default = None
    for vh in vhs:
        for domain in vh.domains:
            d = domain.lower()
            if d == "*":
                default = default or vh
            elif d.startswith("*"):
                suffixes.append((d[1:], vh))
            elif d.endswith("*"):
                prefixes.append((d[:-1], vh))
            else:
                exact.setdefault(d, vh)
    suffixes.sort(key=lambda item: -len(item[0]))
    prefixes.sort(key=lambda item: -len(item[0]))
    return m.RouteTable(name, vhs, dict(exact), tuple(suffixes), tuple(prefixes), default)


def compile_route_configuration(rc: Any) -> m.RouteTable:
    _check("RouteConfiguration", rc)
    return _route_configuration(rc, "RouteConfiguration", rc.name)


def _route_configuration(rc: Any, kind: str, name: str) -> m.RouteTable:
    vhs = []
    seen: set[str] = set()
    for i, vh in enumerate(rc.virtual_hosts):
        path = f"virtual_hosts[{i}]"
        for domain in vh.domains:
            if domain.lower() in seen:
                raise ConfigError(kind, name, f"{path}.domains", f"domain {domain!r} is repeated")
            seen.add(domain.lower())
        routes = tuple(
            _route(r, kind, name, f"{path}.routes[{j}]") for j, r in enumerate(vh.routes)
        )
        vhs.append(m.VirtualHost(vh.name, tuple(vh.domains), routes, *_mutations(vh)))
    table = route_table(rc.name, vhs)
    if rc.request_headers_to_remove:
        table = m.RouteTable(
            table.name,
            table.virtual_hosts,
            table.exact,
            table.suffixes,
            table.prefixes,
            table.default,
            tuple(h.lower() for h in rc.request_headers_to_remove),
        )
    return table


# --- authorization (RBAC) ----------------------------------------------------------------


def _principal(p: Any, kind: str, name: str, path: str) -> m.RbacPrincipal:
    which = p.WhichOneof("identifier")
    if which == "any":
        return m.RbacPrincipal("any")
    if which == "authenticated":
        sm = string_match(
            p.authenticated.principal_name, kind, name, f"{path}.authenticated.principal_name"
        )
        return m.RbacPrincipal("id", sm)
    if which in ("and_ids", "or_ids"):
        ids = getattr(p, which).ids
        children = tuple(
            _principal(c, kind, name, f"{path}.{which}.ids[{i}]") for i, c in enumerate(ids)
        )
        return m.RbacPrincipal("and" if which == "and_ids" else "or", children=children)
    if which == "not_id":
        return m.RbacPrincipal(
            "not", children=(_principal(p.not_id, kind, name, f"{path}.not_id"),)
        )
    raise ConfigError(
        kind, name, path, "principal needs any, authenticated, and_ids, or_ids or not_id"
    )


def _permission(p: Any, kind: str, name: str, path: str) -> m.RbacPermission:
    which = p.WhichOneof("rule")
    if which == "any":
        return m.RbacPermission("any")
    if which == "header":
        return m.RbacPermission(
            "header", header=_header_match(p.header, kind, name, f"{path}.header")
        )
    if which == "url_path":
        if p.url_path.WhichOneof("rule") != "path":
            raise ConfigError(kind, name, f"{path}.url_path", "needs path")
        sm = string_match(p.url_path.path, kind, name, f"{path}.url_path.path")
        return m.RbacPermission("path", path=sm)
    if which in ("and_rules", "or_rules"):
        rules = getattr(p, which).rules
        children = tuple(
            _permission(c, kind, name, f"{path}.{which}.rules[{i}]") for i, c in enumerate(rules)
        )
        return m.RbacPermission("and" if which == "and_rules" else "or", children=children)
    if which == "not_rule":
        return m.RbacPermission(
            "not", children=(_permission(p.not_rule, kind, name, f"{path}.not_rule"),)
        )
    raise ConfigError(kind, name, path, "permission needs any, header, url_path, and/or/not rules")


def _rbac_rules(rules: Any, kind: str, name: str, path: str) -> m.Rbac:
    if rules.action not in (0, 1):
        raise ConfigError(kind, name, f"{path}.action", "only ALLOW and DENY are supported")
    policies = []
    for pname in sorted(rules.policies):
        policy = rules.policies[pname]
        ppath = f"{path}.policies[{pname!r}]"
        policies.append(
            m.RbacPolicy(
                pname,
                tuple(
                    _permission(p, kind, name, f"{ppath}.permissions[{i}]")
                    for i, p in enumerate(policy.permissions)
                ),
                tuple(
                    _principal(p, kind, name, f"{ppath}.principals[{i}]")
                    for i, p in enumerate(policy.principals)
                ),
            )
        )
    return m.Rbac("ALLOW" if rules.action == 0 else "DENY", tuple(policies))


def compile_rbac(config: Any, kind: str, name: str, path: str) -> m.RbacFilter:
    """HTTP or network RBAC: the same shape (`stat_prefix` is the network filter's)."""
    rules = (
        _rbac_rules(config.rules, kind, name, f"{path}.rules") if config.HasField("rules") else None
    )
    shadow = None
    if config.HasField("shadow_rules"):
        shadow = _rbac_rules(config.shadow_rules, kind, name, f"{path}.shadow_rules")
    prefix = getattr(config, "rules_stat_prefix", "") or getattr(config, "stat_prefix", "")
    return m.RbacFilter(rules, shadow, prefix)


# --- listeners ---------------------------------------------------------------------------


def _sds_name(configs: Any, kind: str, name: str, path: str) -> str:
    if len(configs) != 1:
        raise ConfigError(kind, name, path, "exactly one SDS certificate is supported")
    return str(configs[0].name)


def _downstream_tls(ts: Any, kind: str, name: str, path: str) -> m.DownstreamTls | None:
    type_name = ts.typed_config.type_url.rsplit("/", 1)[-1]
    if type_name == RAW_BUFFER:
        return None
    ctx = unpack_any(ts.typed_config)
    common = ctx.common_tls_context
    cert = _sds_name(
        common.tls_certificate_sds_secret_configs,
        kind,
        name,
        f"{path}.common_tls_context.tls_certificate_sds_secret_configs",
    )
    trust, sans = _validation(common)
    alpn = tuple(common.alpn_protocols) or ("http/1.1",)
    if ctx.require_client_certificate.value and not trust:
        raise ConfigError(kind, name, path, "client certificates required but no trust bundle")
    return m.DownstreamTls(cert, trust, sans, alpn)


def _validation(common: Any) -> tuple[str | None, tuple[str, ...]]:
    which = common.WhichOneof("validation_context_type")
    if which == "validation_context_sds_secret_config":
        return common.validation_context_sds_secret_config.name, ()
    if which == "combined_validation_context":
        cvc = common.combined_validation_context
        sans = tuple(
            s.matcher.exact or (s.matcher.prefix + "*")
            for s in cvc.default_validation_context.match_typed_subject_alt_names
        )
        return cvc.validation_context_sds_secret_config.name or None, sans
    return None, ()


def _upstream_tls(ts: Any, kind: str, name: str) -> m.UpstreamTls | None:
    type_name = ts.typed_config.type_url.rsplit("/", 1)[-1]
    if type_name == RAW_BUFFER:
        return None
    ctx = unpack_any(ts.typed_config)
    common = ctx.common_tls_context
    cert = None
    if common.tls_certificate_sds_secret_configs:
        cert = _sds_name(
            common.tls_certificate_sds_secret_configs,
            kind,
            name,
            "transport_socket.common_tls_context",
        )
    trust, sans = _validation(common)
    return m.UpstreamTls(
        sni=ctx.sni,
        alpn=tuple(common.alpn_protocols),
        certificate_secret=cert,
        trust_secret=trust,
        verify_san_uris=sans,
    )


def _hcm(hcm: Any, kind: str, name: str, path: str, direction: str) -> m.HttpConnectionManager:
    which = hcm.WhichOneof("route_specifier")
    rds_name = None
    table = None
    if which == "rds":
        if not hcm.rds.config_source.HasField("ads"):
            raise ConfigError(kind, name, f"{path}.rds.config_source", "only ADS is supported")
        rds_name = hcm.rds.route_config_name
    elif which == "route_config":
        table = _route_configuration(hcm.route_config, kind, name)
    else:
        raise ConfigError(kind, name, path, "needs rds or route_config")
    filters = []
    for i, f in enumerate(hcm.http_filters):
        type_name = f.typed_config.type_url.rsplit("/", 1)[-1]
        where = f"{path}.http_filters[{i}]"
        if type_name == HTTP_RBAC:
            rbac = compile_rbac(unpack_any(f.typed_config), kind, name, where)
            filters.append(m.HttpFilter("rbac", rbac))
            continue
        config = _http_filter_config(unpack_any(f.typed_config), type_name, kind, name, where)
        filters.append(m.HttpFilter(type_name.rsplit(".", 1)[-1].lower(), config))
        if i == len(hcm.http_filters) - 1 and not type_name.endswith("router.v3.Router"):
            raise ConfigError(kind, name, f"{path}.http_filters", "the last filter must be router")
    if not filters:
        raise ConfigError(kind, name, f"{path}.http_filters", "needs the router filter")
    codec = hcm.codec_type
    if codec not in (0, 1):  # AUTO, HTTP1
        raise ConfigError(kind, name, f"{path}.codec_type", "only AUTO and HTTP1 are supported")
    tracing = _tracing(hcm.tracing, kind, name, f"{path}.tracing") if _has(hcm, "tracing") else None
    access_logs = tuple(
        _access_log(log, kind, name, f"{path}.access_log[{i}]")
        for i, log in enumerate(hcm.access_log)
    )
    return m.HttpConnectionManager(
        stat_prefix=hcm.stat_prefix,
        route_config_name=rds_name,
        route_table=table,
        filters=tuple(filters),
        forward_proxy=hcm.http_protocol_options.allow_absolute_url.value,
        request_timeout=seconds(hcm.request_timeout),
        stream_idle_timeout=seconds(hcm.stream_idle_timeout, 300.0)
        if not hcm.HasField("stream_idle_timeout")
        else seconds(hcm.stream_idle_timeout),
        idle_timeout=seconds(hcm.common_http_protocol_options.idle_timeout, 3600.0),
        max_request_headers_kb=hcm.max_request_headers_kb.value or 60,
        generate_request_id=hcm.generate_request_id.value
        if hcm.HasField("generate_request_id")
        else True,
        xff_append=not hcm.skip_xff_append,
        direction="inbound" if direction == "inbound" else "outbound",
        tracing=tracing,
        access_logs=access_logs,
    )


ZIPKIN = "envoy.config.trace.v3.ZipkinConfig"
FILE_ACCESS_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
HTTP_JSON = 1  # ZipkinConfig.CollectorEndpointVersion


def _tracing(t: Any, kind: str, name: str, path: str) -> m.Tracing:
    if not t.HasField("provider"):
        raise ConfigError(kind, name, f"{path}.provider", "a Zipkin provider is required")
    type_name = t.provider.typed_config.type_url.rsplit("/", 1)[-1]
    if type_name != ZIPKIN:
        reason = f"only the Zipkin tracer ({ZIPKIN}) is supported, got {type_name or 'none'}"
        raise ConfigError(kind, name, f"{path}.provider.typed_config", reason)
    zipkin = unpack_any(t.provider.typed_config)
    where = f"{path}.provider.typed_config"
    if not zipkin.collector_cluster:
        raise ConfigError(kind, name, f"{where}.collector_cluster", "is required")
    if zipkin.collector_endpoint_version != HTTP_JSON:
        raise ConfigError(
            kind, name, f"{where}.collector_endpoint_version", "only HTTP_JSON is supported"
        )
    if _has(zipkin, "shared_span_context") and zipkin.shared_span_context.value:
        raise ConfigError(
            kind, name, f"{where}.shared_span_context", "spans are never shared (set false)"
        )
    if not zipkin.collector_endpoint.startswith("/"):
        raise ConfigError(kind, name, f"{where}.collector_endpoint", "must be a path (/...)")
    sampling = t.random_sampling.value if _has(t, "random_sampling") else 100.0
    if not 0.0 <= sampling <= 100.0:
        raise ConfigError(kind, name, f"{path}.random_sampling", "must be within 0..100")
    tags = []
    for i, tag in enumerate(t.custom_tags):
        if tag.WhichOneof("type") != "literal":
            reason = "only literal custom tags are supported"
            raise ConfigError(kind, name, f"{path}.custom_tags[{i}]", reason)
        tags.append((tag.tag, tag.literal.value))
    return m.Tracing(
        sampling=sampling / 100.0,
        collector_cluster=zipkin.collector_cluster,
        collector_endpoint=zipkin.collector_endpoint,
        tags=tuple(tags),
    )


def _access_log(log: Any, kind: str, name: str, path: str) -> m.AccessLog:
    from gossamer.proxy.filters.accesslog import compile_format

    type_name = log.typed_config.type_url.rsplit("/", 1)[-1]
    if type_name != FILE_ACCESS_LOG:
        reason = f"only the file access logger ({FILE_ACCESS_LOG}) is supported"
        raise ConfigError(kind, name, f"{path}.typed_config", reason)
    config = unpack_any(log.typed_config)
    where = f"{path}.typed_config"
    if not config.path:
        raise ConfigError(kind, name, f"{where}.path", "is required")
    if config.WhichOneof("access_log_format") != "log_format" or not _has(
        config.log_format, "json_format"
    ):
        raise ConfigError(kind, name, f"{where}.log_format", "a json_format is required")
    fields = []
    for key, value in config.log_format.json_format.fields.items():
        if value.WhichOneof("kind") != "string_value":
            reason = "values must be strings (a command operator or a literal)"
            raise ConfigError(kind, name, f"{where}.log_format.json_format.{key}", reason)
        fields.append((key, value.string_value))
    try:
        compile_format(tuple(fields))
    except ValueError as exc:
        raise ConfigError(kind, name, f"{where}.log_format.json_format", str(exc)) from None
    return m.AccessLog(path=config.path, fields=tuple(fields))


def _tcp_proxy(tp: Any, kind: str, name: str, path: str) -> m.TcpProxy:
    which = tp.WhichOneof("cluster_specifier")
    if which == "cluster":
        clusters: tuple[m.WeightedCluster, ...] = (m.WeightedCluster(tp.cluster, 1),)
    elif which == "weighted_clusters":
        clusters = tuple(m.WeightedCluster(c.name, c.weight) for c in tp.weighted_clusters.clusters)
    else:
        raise ConfigError(kind, name, path, "tcp_proxy needs cluster or weighted_clusters")
    total = sum(c.weight for c in clusters)
    if total <= 0:
        raise ConfigError(kind, name, path, "weights sum to 0")
    return m.TcpProxy(
        stat_prefix=tp.stat_prefix,
        clusters=clusters,
        total_weight=total,
        idle_timeout=seconds(tp.idle_timeout, 3600.0) if tp.HasField("idle_timeout") else 3600.0,
        cumulative=_cumulative(c.weight for c in clusters),
    )


def compile_listener(lst: Any) -> m.Listener:
    kind, name = "Listener", lst.name
    _check(kind, lst)
    if not lst.HasField("address") or not lst.address.HasField("socket_address"):
        raise ConfigError(kind, name, "address", "a socket address is required")
    sa = lst.address.socket_address
    if sa.protocol != 0:
        raise ConfigError(kind, name, "address.socket_address.protocol", "only TCP is supported")
    direction: Literal["inbound", "outbound"] = (
        "inbound" if lst.traffic_direction == 1 else "outbound"
    )
    chains = list(lst.filter_chains)
    if not chains:
        raise ConfigError(kind, name, "filter_chains", "at least one filter chain is required")
    if any(c.filter_chain_match.server_names for c in chains):
        return _sni_listener(lst, chains, direction)
    # PERMISSIVE mTLS: a "tls" chain and a "raw_buffer" chain with the same filters.
    allow_plaintext = False
    if len(chains) == 2:
        protos = {c.filter_chain_match.transport_protocol for c in chains}
        if protos != {"tls", "raw_buffer"}:
            raise ConfigError(
                kind,
                name,
                "filter_chains",
                "two chains are only supported as one 'tls' and one 'raw_buffer' chain",
            )
        allow_plaintext = True
        chains.sort(key=lambda c: c.filter_chain_match.transport_protocol != "tls")
    elif len(chains) > 2:
        raise ConfigError(kind, name, "filter_chains", "at most two filter chains are supported")
    chain = chains[0]
    if not chain.filters:
        raise ConfigError(kind, name, "filter_chains[0].filters", "needs a network filter")
    # Network RBAC filters and a connection rate limit, then one terminal filter
    # (tcp_proxy or the HCM).
    rbac: list[m.RbacFilter] = []
    connection_limit = None
    for i, flt in enumerate(chain.filters[:-1]):
        type_name = flt.typed_config.type_url.rsplit("/", 1)[-1]
        path = f"filter_chains[0].filters[{i}]"
        if type_name == NETWORK_RBAC:
            rbac.append(compile_rbac(unpack_any(flt.typed_config), kind, name, path))
        elif type_name == NETWORK_RATE_LIMIT:
            connection_limit = _network_rate_limit(unpack_any(flt.typed_config), kind, name, path)
        else:
            reason = "only network RBAC and local rate limit filters may precede the last filter"
            raise ConfigError(kind, name, path, reason)
    flt = chain.filters[-1]
    type_name = flt.typed_config.type_url.rsplit("/", 1)[-1]
    path = f"filter_chains[0].filters[{len(chain.filters) - 1}]"
    if connection_limit is not None and type_name != TCP_PROXY:
        reason = "a connection rate limit is only supported before tcp_proxy"
        raise ConfigError(kind, name, "filter_chains[0].filters[0]", reason)
    handler: m.HttpConnectionManager | m.TcpProxy
    if type_name == HCM:
        if rbac:
            raise ConfigError(
                kind, name, "filter_chains[0].filters", "network RBAC only before tcp_proxy"
            )
        handler = _hcm(unpack_any(flt.typed_config), kind, name, path, direction)
    elif type_name == TCP_PROXY:
        handler = _tcp_proxy(unpack_any(flt.typed_config), kind, name, path)
        if rbac:
            handler = m.TcpProxy(**{**_fields(handler), "rbac": tuple(rbac)})
    else:
        raise ConfigError(kind, name, path, f"network filter {type_name} is not supported")
    tls = None
    if chain.HasField("transport_socket"):
        tls = _downstream_tls(chain.transport_socket, kind, name, "filter_chains[0]")
        if tls is not None and allow_plaintext:
            tls = m.DownstreamTls(
                tls.certificate_secret, tls.trust_secret, tls.verify_san_uris, tls.alpn, True
            )
    return m.Listener(name, sa.address, sa.port_value, direction, handler, tls, connection_limit)


NETWORK_RATE_LIMIT = "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"


def _network_rate_limit(config: Any, kind: str, name: str, path: str) -> m.LocalRateLimitConfig:
    tb = config.token_bucket
    interval = seconds(tb.fill_interval, 0.0) or 0.0
    if tb.max_tokens < 1 or interval <= 0:
        reason = "max_tokens >= 1 and fill_interval > 0 are required"
        raise ConfigError(kind, name, f"{path}.token_bucket", reason)
    fill = tb.tokens_per_fill.value if tb.HasField("tokens_per_fill") else 1
    return m.LocalRateLimitConfig(tb.max_tokens, fill, interval)


_FRACTION_DENOMINATORS = {0: 100, 1: 10_000, 2: 1_000_000}


def _fraction(fp: Any) -> float:
    value: float = fp.numerator / _FRACTION_DENOMINATORS[fp.denominator]
    return min(1.0, value)


def _http_filter_config(config: Any, type_name: str, kind: str, name: str, path: str) -> object:
    if type_name.endswith("fault.v3.HTTPFault"):
        delay = abort = grpc = None
        if config.HasField("delay"):
            if not config.delay.HasField("fixed_delay"):
                raise ConfigError(kind, name, f"{path}.delay", "only fixed_delay is supported")
            delay = seconds(config.delay.fixed_delay, 0.0)
        if config.HasField("abort"):
            which = config.abort.WhichOneof("error_type")
            if which == "http_status":
                abort = config.abort.http_status
            elif which == "grpc_status":
                grpc = config.abort.grpc_status
            else:
                raise ConfigError(kind, name, f"{path}.abort", "needs http_status or grpc_status")
        return m.FaultConfig(
            delay=delay,
            delay_fraction=_fraction(config.delay.percentage) if delay is not None else 0.0,
            abort_status=abort,
            abort_grpc_status=grpc,
            abort_fraction=_fraction(config.abort.percentage) if config.HasField("abort") else 0.0,
            headers=tuple(
                _header_match(h, kind, name, f"{path}.headers[{j}]")
                for j, h in enumerate(config.headers)
            ),
        )
    if type_name.endswith("local_ratelimit.v3.LocalRateLimit"):
        tb = config.token_bucket
        if not config.HasField("token_bucket") or tb.max_tokens < 1:
            raise ConfigError(kind, name, f"{path}.token_bucket", "max_tokens must be >= 1")
        for field in ("filter_enabled", "filter_enforced"):
            fp = getattr(config, field).default_value
            if config.HasField(field) and _fraction(fp) < 1.0:
                raise ConfigError(kind, name, f"{path}.{field}", "only 100% is supported")
        interval = seconds(tb.fill_interval, 0.0) or 0.0
        if interval <= 0:
            raise ConfigError(kind, name, f"{path}.token_bucket.fill_interval", "must be > 0")
        return m.LocalRateLimitConfig(
            max_tokens=tb.max_tokens,
            tokens_per_fill=tb.tokens_per_fill.value if tb.HasField("tokens_per_fill") else 1,
            fill_interval=interval,
            status=config.status.code if config.HasField("status") else 429,
            response_headers=tuple(
                (o.header.key.lower(), o.header.value) for o in config.response_headers_to_add
            ),
            x_ratelimit_headers=config.enable_x_ratelimit_headers == 1,
        )
    return None


def _sni_listener(
    lst: Any, chains: list[Any], direction: Literal["inbound", "outbound"]
) -> m.Listener:
    """TLS passed through, routed by the ClientHello's server name: one tcp_proxy per
    chain, chains matched by `server_names` (exact), at most one default chain."""
    kind, name = "Listener", lst.name
    by_sni: dict[str, tuple[m.WeightedCluster, ...]] = {}
    default: m.TcpProxy | None = None
    for i, chain in enumerate(chains):
        path = f"filter_chains[{i}]"
        if chain.HasField("transport_socket") or chain.filter_chain_match.transport_protocol:
            raise ConfigError(
                kind, name, path, "SNI routing passes TLS through: no transport socket"
            )
        if len(chain.filters) != 1:
            raise ConfigError(kind, name, f"{path}.filters", "exactly one tcp_proxy per chain")
        flt = chain.filters[0]
        if flt.typed_config.type_url.rsplit("/", 1)[-1] != TCP_PROXY:
            raise ConfigError(kind, name, f"{path}.filters[0]", "SNI routing needs tcp_proxy")
        proxy = _tcp_proxy(unpack_any(flt.typed_config), kind, name, f"{path}.filters[0]")
        names = [n.lower().rstrip(".") for n in chain.filter_chain_match.server_names]
        if not names:
            if default is not None:
                raise ConfigError(kind, name, path, "more than one chain without server_names")
            default = proxy
        for server in names:
            if server.startswith("*"):
                raise ConfigError(
                    kind,
                    name,
                    f"{path}.filter_chain_match.server_names",
                    "wildcards are not supported",
                )
            if server in by_sni:
                raise ConfigError(
                    kind, name, f"{path}.filter_chain_match.server_names", f"{server!r} is repeated"
                )
            by_sni[server] = proxy.clusters
    base = default or m.TcpProxy(stat_prefix=name, clusters=(), total_weight=0)
    handler = m.TcpProxy(**{**_fields(base), "sni_routing": True, "by_sni": by_sni})
    sa = lst.address.socket_address
    return m.Listener(name, sa.address, sa.port_value, direction, handler, None)


# --- clusters ----------------------------------------------------------------------------

_CLUSTER_TYPES = {0: "static", 1: "strict_dns", 2: "logical_dns", 3: "eds", 4: "original_dst"}
_LB_POLICIES = {0: "round_robin", 1: "least_request", 2: "ring_hash", 3: "random", 5: "maglev"}
CLUSTER_PROVIDED = 6


def compile_cluster(c: Any) -> m.Cluster:
    kind, name = "Cluster", c.name
    _check(kind, c)
    ctype = _CLUSTER_TYPES.get(c.type)
    if ctype is None:
        raise ConfigError(kind, name, "type", "cluster type not supported")
    if ctype == "eds" and not c.eds_cluster_config.eds_config.HasField("ads"):
        raise ConfigError(kind, name, "eds_cluster_config.eds_config", "only ADS is supported")
    if ctype == "original_dst":
        # Passthrough: the upstream is the request's authority (host:port as given).
        odst = c.original_dst_lb_config
        if c.lb_policy != CLUSTER_PROVIDED:
            raise ConfigError(kind, name, "lb_policy", "ORIGINAL_DST needs CLUSTER_PROVIDED")
        if not odst.use_http_header or odst.http_header_name.lower() not in (":authority", "host"):
            raise ConfigError(
                kind,
                name,
                "original_dst_lb_config",
                "only use_http_header with http_header_name ':authority' is supported",
            )
    lb = "round_robin" if ctype == "original_dst" else _LB_POLICIES.get(c.lb_policy)
    if lb is None:
        raise ConfigError(kind, name, "lb_policy", "load balancing policy not supported")
    meta: dict[str, str] = {}
    if "gossamer" in c.metadata.filter_metadata:
        meta = {k: str(v) for k, v in _struct(c.metadata.filter_metadata["gossamer"]).items()}
    if meta.get("lb") == "peak_ewma":  # Envoy has no PeakEWMA; we carry it as metadata
        lb = "peak_ewma"
    breaker = m.CircuitBreaker()
    for t in c.circuit_breakers.thresholds:
        if t.priority == 0:
            breaker = m.CircuitBreaker(
                t.max_connections.value if t.HasField("max_connections") else 1024,
                t.max_pending_requests.value if t.HasField("max_pending_requests") else 1024,
                t.max_requests.value if t.HasField("max_requests") else 1024,
                # Absent: not limited here; the routes' retry budgets bound retries.
                t.max_retries.value if t.HasField("max_retries") else m.UNLIMITED,
            )
    outlier = _outlier(c.outlier_detection) if c.HasField("outlier_detection") else None
    health = None
    if c.health_checks:
        if len(c.health_checks) > 1:
            raise ConfigError(kind, name, "health_checks", "one health check per cluster")
        health = _health_check(c.health_checks[0], kind, name)
    endpoints: tuple[m.Endpoint, ...] = ()
    if c.HasField("load_assignment"):
        endpoints = compile_endpoints(c.load_assignment)
    tls = _upstream_tls(c.transport_socket, kind, name) if c.HasField("transport_socket") else None
    tls_match: dict[str, str] | None = None
    if c.transport_socket_matches:
        if len(c.transport_socket_matches) != 1 or tls is not None:
            raise ConfigError(
                kind,
                name,
                "transport_socket_matches",
                "one match (TLS) with a plaintext default transport socket is supported",
            )
        tsm = c.transport_socket_matches[0]
        tls = _upstream_tls(tsm.transport_socket, kind, name)
        tls_match = {k: _scalar(v) for k, v in _struct(tsm.match).items()}
    return m.Cluster(
        name=name,
        kind=ctype,  # type: ignore[arg-type]
        endpoints=endpoints,
        lb_policy=lb,  # type: ignore[arg-type]
        choice_count=c.least_request_lb_config.choice_count.value or 2,
        ring_size=c.ring_hash_lb_config.minimum_ring_size.value or 1024,
        connect_timeout=seconds(c.connect_timeout, 5.0) or 5.0,
        protocol="tcp" if meta.get("protocol") == "tcp" else "http1",
        tls=tls,
        tls_match=tls_match,
        circuit_breaker=breaker,
        outlier=outlier,
        health_check=health,
        idle_timeout=seconds(c.common_http_protocol_options.idle_timeout, 60.0) or 60.0,
        zone_order=_zone_order(meta.pop("zone_order", None), kind, name),
        metadata=dict(meta),
    )


def _zone_order(text: str | None, kind: str, name: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    import json

    try:
        zones = json.loads(text)
    except ValueError:
        zones = None
    if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
        path = 'metadata.filter_metadata["gossamer"].zone_order'
        raise ConfigError(kind, name, path, "must be a JSON list of zone names")
    return tuple(zones)


def _outlier(od: Any) -> m.OutlierDetection:
    def u32(field: str, default: int | None) -> int | None:
        return int(getattr(od, field).value) if od.HasField(field) else default

    return m.OutlierDetection(
        interval=seconds(od.interval, 10.0) or 10.0,
        base_ejection_time=seconds(od.base_ejection_time, 30.0) or 30.0,
        max_ejection_time=seconds(od.max_ejection_time, 300.0) or 300.0,
        max_ejection_percent=float(u32("max_ejection_percent", 10) or 10),
        # enforcing_* = 0 turns a detector off; Envoy enforces gateway failures only when
        # asked (enforcing_consecutive_gateway_failure defaults to 0).
        consecutive_5xx=u32("consecutive_5xx", 5)
        if u32("enforcing_consecutive_5xx", 100)
        else None,
        consecutive_gateway_errors=u32("consecutive_gateway_failure", 5)
        if u32("enforcing_consecutive_gateway_failure", 0)
        else None,
        success_rate_minimum_hosts=u32("success_rate_minimum_hosts", 5)
        if u32("enforcing_success_rate", 100) and od.HasField("success_rate_minimum_hosts")
        else None,
        success_rate_request_volume=u32("success_rate_request_volume", 100) or 100,
        success_rate_stdev_factor=(u32("success_rate_stdev_factor", 1900) or 1900) / 1000,
    )


_METHODS = {
    1: "GET",
    2: "HEAD",
    3: "POST",
    4: "PUT",
    5: "DELETE",
    6: "CONNECT",
    7: "OPTIONS",
    8: "TRACE",
    9: "PATCH",
}


def _health_check(hc: Any, kind: str, name: str) -> m.HealthCheck:
    which = hc.WhichOneof("health_checker")
    interval = seconds(hc.interval, 10.0) or 10.0
    timeout = seconds(hc.timeout, 1.0) or 1.0
    healthy = hc.healthy_threshold.value or 1
    unhealthy = hc.unhealthy_threshold.value or 3
    jitter = seconds(hc.interval_jitter, 0.0) or 0.0
    if which == "http_health_check":
        h = hc.http_health_check
        statuses = tuple((r.start, r.end) for r in h.expected_statuses) or ((200, 400),)
        return m.HealthCheck(
            "http",
            interval,
            timeout,
            healthy,
            unhealthy,
            jitter,
            path=h.path or "/",
            host=h.host,
            method=_METHODS.get(h.method, "GET"),
            headers=tuple((o.header.key, o.header.value) for o in h.request_headers_to_add),
            expected_statuses=statuses,
        )
    if which == "tcp_health_check":
        # Envoy's payloads are hex text.
        t = hc.tcp_health_check
        send = bytes.fromhex(t.send.text) if t.HasField("send") else b""
        receive = b"".join(bytes.fromhex(p.text) for p in t.receive)
        return m.HealthCheck(
            "tcp", interval, timeout, healthy, unhealthy, jitter, send=send, receive=receive
        )
    if which == "grpc_health_check":
        return m.HealthCheck(
            "grpc",
            interval,
            timeout,
            healthy,
            unhealthy,
            jitter,
            grpc_service=hc.grpc_health_check.service_name,
        )
    raise ConfigError(kind, name, "health_checks[0]", "needs an http, tcp or grpc health check")


def compile_endpoints(cla: Any) -> tuple[m.Endpoint, ...]:
    _check("ClusterLoadAssignment", cla)
    out = []
    for group in cla.endpoints:
        zone = group.locality.zone
        for lb in group.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            labels: dict[str, str] = {}
            workload = ""
            socket_match: dict[str, str] = {}
            if SOCKET_MATCH in lb.metadata.filter_metadata:
                data = _struct(lb.metadata.filter_metadata[SOCKET_MATCH])
                socket_match = {k: _scalar(v) for k, v in data.items()}
            if "gossamer" in lb.metadata.filter_metadata:
                data = _struct(lb.metadata.filter_metadata["gossamer"])
                workload = str(data.pop("workload", ""))
                labels = {k: str(v) for k, v in data.get("labels", {}).items()}
            out.append(
                m.Endpoint(
                    address=sa.address,
                    port=sa.port_value,
                    weight=lb.load_balancing_weight.value or 1,
                    zone=zone,
                    priority=group.priority,
                    # UNKNOWN (0) and HEALTHY (1) take traffic; UNHEALTHY, DRAINING... do not.
                    healthy=lb.health_status in (0, 1),
                    labels=dict(labels),
                    workload=workload,
                    socket_match=socket_match,
                )
            )
    return tuple(out)


def compile_secret(s: Any) -> m.Secret:
    _check("Secret", s)

    def data(ds: Any) -> bytes:
        return bytes(ds.inline_bytes) or ds.inline_string.encode()

    return m.Secret(
        name=s.name,
        certificate_chain=data(s.tls_certificate.certificate_chain),
        private_key=data(s.tls_certificate.private_key),
        trusted_ca=data(s.validation_context.trusted_ca),
    )


def assemble(
    listeners: Mapping[str, m.Listener],
    routes: Mapping[str, m.RouteTable],
    clusters: Mapping[str, m.Cluster],
    endpoints: Mapping[str, tuple[m.Endpoint, ...]],
    secrets: Mapping[str, m.Secret],
    versions: Mapping[str, str],
) -> m.ProxyConfig:
    """One consistent ProxyConfig: EDS endpoints folded into their clusters."""
    merged = {}
    for name, cluster in clusters.items():
        if cluster.kind == "eds":
            eps = endpoints.get(name, ())
            cluster = m.Cluster(**{**_fields(cluster), "endpoints": eps})
        merged[name] = cluster
    return m.ProxyConfig(
        listeners=dict(listeners),
        routes=dict(routes),
        clusters=dict(merged),
        secrets=dict(secrets),
        versions=dict(versions),
    )


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
