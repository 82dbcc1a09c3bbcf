"""Real local receivers for notification tests: an HTTP webhook server and an SMTP server.

Both listen on 127.0.0.1 in a background thread and record what they receive, so tests can
assert the exact payloads Apprise delivered. The SMTP receiver needs `aiosmtpd` (dev extra).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Request:
    """One request the webhook receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A recording HTTP server; answers every POST with `status`."""

    port: int
    requests: list[Request] = field(default_factory=list)
    status: int = 200

    def url(self, scheme: str, path: str) -> str:
        """An Apprise URL for this server, e.g. url("json", "/hook")."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Request]:
        """The requests received on one path (query string ignored)."""
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[WebhookReceiver]:
    """Run a WebhookReceiver on a free loopback port for the duration of the block."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                receiver.requests.append(
                    Request(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(port=server.server_address[1], status=status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class SmtpReceiver:
    """A recording SMTP server: every message it accepted, parsed."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, sender: str, recipient: str) -> str:
        """An Apprise mailto:// URL delivering to this server without TLS or login."""
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={recipient}&mode=insecure"


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """Run an aiosmtpd SmtpReceiver on a free loopback port for the duration of the block."""
    from aiosmtpd.controller import Controller

    receiver = SmtpReceiver(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parsed = message_from_bytes(envelope.content, policy=policy.default)
            receiver.messages.append(cast("EmailMessage", parsed))
            return "250 Message accepted"

    controller = Controller(Handler(), hostname="127.0.0.1", port=receiver.port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
