"""Reliability fixtures: a small company and a fault-injecting S3 proxy (CLI subprocesses: the
shared `cli` fixture of tests/conftest.py).

The S3 proxy is a real HTTP server on 127.0.0.1 in front of the moto server: it forwards every
request unchanged except the first N that match a rule, which it answers with an S3 error
(500 InternalError, 503 SlowDown), a TCP reset before any byte, a reset half-way through the
object body, or a stall longer than the client's timeout. boto3 and polars talk to it as to S3.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from northstar.generate import generate

COMPANY_START, COMPANY_END = date(2025, 1, 1), date(2025, 4, 30)
RUN_DATE = date(2025, 4, 15)
"""A date late in the company's history: every KPI family has data behind it."""

S3_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}
FAULT_KINDS = ("500", "503", "reset", "cut", "stall")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
Match = Callable[[str, str], bool]


@pytest.fixture(scope="session")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 accounts over January-April 2025 as CSV: every required table, no optional ones."""
    out = tmp_path_factory.mktemp("reliability-company")
    generate(out, accounts=40, start=COMPANY_START, end=COMPANY_END, seed=3, fmt="csv")
    return out


@dataclass
class Fault:
    """Answer the next `times` requests that `match` (method, path) with `kind`."""

    kind: str
    match: Match
    times: int


@dataclass
class FaultProxy:
    """The proxy's endpoint, its pending faults and a log of (method, path, fault or None)."""

    endpoint: str
    upstream: tuple[str, int]
    stall_seconds: float = 3.0
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, kind: str, match: Match, times: int) -> None:
        """Queue a fault for the next `times` matching requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self.faults.append(Fault(kind, match, times))

    def clear(self) -> None:
        """Drop every pending fault: the proxy forwards everything from now on."""
        with self.lock:
            self.faults.clear()

    def take(self, method: str, path: str) -> str | None:
        """The fault to apply to this request (consuming one), or None to forward it."""
        with self.lock:
            fault = next((f for f in self.faults if f.times > 0 and f.match(method, path)), None)
            if fault is not None:
                fault.times -= 1
            kind = None if fault is None else fault.kind
            self.log.append((method, path, kind))
        return kind

    def injected(self, kind: str | None = None) -> int:
        """How many requests got a fault (of `kind`, when given)."""
        return sum(1 for *_, k in self.log if k is not None and (kind is None or k == kind))


def _reset(connection: socket.socket) -> None:
    """Close a socket with SO_LINGER 0, so the peer sees a TCP RST, not a clean FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to one proxy's fault plan."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            upstream.close()
            return response.status, kept, data

        def _respond(
            self, status: int, headers: list[tuple[str, str]], data: bytes, *, cut: bool
        ) -> None:
            self.send_response(status)
            lengths = [v for k, v in headers if k.lower() == "content-length"]
            for k, v in headers:
                if k.lower() != "content-length":
                    self.send_header(k, v)
            head = self.command == "HEAD"
            self.send_header("Content-Length", lengths[0] if head and lengths else str(len(data)))
            self.end_headers()
            if head:
                return
            if cut:
                self.wfile.write(data[: max(1, len(data) // 2)])
                self.wfile.flush()
                _reset(self.connection)
                self.close_connection = True
                return
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = proxy.take(self.command, self.path)
            if kind in ("reset", "stall"):
                if kind == "stall":
                    time.sleep(proxy.stall_seconds)
                _reset(self.connection)
                self.close_connection = True
                return
            if kind in S3_ERRORS:
                status, code, message = S3_ERRORS[kind]
                xml = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><RequestId>injected</RequestId></Error>"
                ).encode()
                self._respond(status, [("Content-Type", "application/xml")], xml, cut=False)
                return
            status, headers, data = self._forward(body)
            self._respond(status, headers, data, cut=kind == "cut")

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def fault_proxy(s3_server: Any) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's moto server, for one test."""
    parts = urlsplit(s3_server.endpoint)
    assert parts.hostname is not None
    assert parts.port is not None
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    proxy = FaultProxy(f"http://127.0.0.1:{server.server_address[1]}", (parts.hostname, parts.port))
    server.RequestHandlerClass = _handler(proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
