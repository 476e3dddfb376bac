"""`gossamer explain`: what the mesh will do with a request, and why.

The answer is computed with the data plane's own code on the data plane's own config:
the control plane translates the xDS it sends (or would send) the source's sidecar
(controlplane/translate), the sidecar's compiler turns it into the proxy config
(proxy/config/compile.py), the sidecar's route table picks the route
(proxy/filters/route.py) for a request parsed by the sidecar's HTTP parser, and the
destination's inbound RBAC filters decide authorization (proxy/filters/authz.py). Policy
resources are named by the same targeting rules the translation applies
(controlplane/policies/targeting.py).

This package is the one place that depends on both the control plane and the proxy:
the control plane imports it only when `GET /api/v1/explain` is called.
"""

from __future__ import annotations

from gossamer.explain.core import ExplainError, ExplainRequest, explain
from gossamer.explain.flags import FLAGS, explain_flags

__all__ = ["FLAGS", "ExplainError", "ExplainRequest", "explain", "explain_flags"]
