"""Type URLs of the xDS v3 resources the server carries, and the order it pushes them in."""

from __future__ import annotations

from typing import Final

LISTENER: Final = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE: Final = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER: Final = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT: Final = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET: Final = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# Make-before-break (xDS protocol, "Eventual consistency considerations"): clusters and
# their endpoints before the listeners and routes that point at them. Types not listed
# here follow, in the order the client first asked for them.
PUSH_ORDER: Final[tuple[str, ...]] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)

# Types with "wildcard" semantics: an empty first subscription means "everything for me".
WILDCARD_TYPES: Final[frozenset[str]] = frozenset({LISTENER, CLUSTER})

# State-of-the-world responses for these types carry every subscribed resource (an
# absent one is deleted by the client); other types may carry only what changed.
FULL_STATE_TYPES: Final[frozenset[str]] = frozenset({LISTENER, CLUSTER})

WILDCARD: Final = "*"

SHORT_NAMES: Final[dict[str, str]] = {
    LISTENER: "lds",
    ROUTE: "rds",
    CLUSTER: "cds",
    ENDPOINT: "eds",
    SECRET: "sds",
}


def short_name(type_url: str) -> str:
    """`lds`, `cds`, … for logs; the bare message name for other types."""
    return SHORT_NAMES.get(type_url) or type_url.rsplit(".", 1)[-1]
