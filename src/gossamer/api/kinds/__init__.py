"""Importing this package registers every resource kind."""

from gossamer.api.kinds import gateway, ingress, mesh, policies, smi

__all__ = ["gateway", "ingress", "mesh", "policies", "smi"]
