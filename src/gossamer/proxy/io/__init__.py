"""The only asyncio/uvloop code of the sidecar: listeners, connections, pools, timers."""
