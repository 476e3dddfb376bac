"""The sidecar proxy: xDS-driven HTTP/1.1 and TCP data path (see docs/proxy.md)."""
