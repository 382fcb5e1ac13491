"""A local OTLP/HTTP receiver that reads each export and discards it.

With tracing on, the service exports its sampled spans here (`OTEL_EXPORTER_OTLP_ENDPOINT`), so the
benchmark pays for real span creation, batching, protobuf encoding and an HTTP export, without a
collector binary and without the disk or network of a real backend.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        type(self).received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the benchmark prints its own report."""


class OtlpSink:
    """`with OtlpSink() as sink:` serves on `sink.endpoint` until the block ends."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def exports(self) -> int:
        return _Discard.received

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
