"""A protoc-free gRPC greeter (bytes in, bytes out) and a proxyless xDS client process."""

from __future__ import annotations

import json
import sys
from concurrent import futures

import grpc

SERVICE = "helloworld.Greeter"
METHOD = f"/{SERVICE}/SayHello"


def serve(reply: bytes, port: int = 0, fail_first: int = 0) -> tuple[grpc.Server, int]:
    """A greeter answering `reply` on 127.0.0.1; returns (server, port). With
    `fail_first` = n, of every n + 1 calls the first n fail with UNAVAILABLE."""
    calls = [0]

    def say_hello(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls[0] += 1
        if fail_first and calls[0] % (fail_first + 1):
            context.abort(grpc.StatusCode.UNAVAILABLE, "flaky")
        return reply

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "SayHello": grpc.unary_unary_rpc_method_handler(
                say_hello, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


def client_main() -> None:
    """Reads `N` lines on stdin; for each, makes N calls and prints {reply: count} as JSON.

    One channel for the whole life of the process, so config changes are observed
    without restarting the client. GRPC_XDS_BOOTSTRAP_CONFIG must be set.
    """
    target = sys.argv[1]
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary(METHOD)
    for line in sys.stdin:
        counts: dict[str, int] = {}
        for _ in range(int(line)):
            try:
                reply = call(b"", timeout=5).decode()
            except grpc.RpcError as exc:
                reply = f"error:{exc.code().name}"
            counts[reply] = counts.get(reply, 0) + 1
        print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    client_main()
