"""A webhook receiver on loopback that checks each message as the Standard Webhooks
specification says a receiver must, written from the specification (not from Clarion's sender):

    signed content  = "{webhook-id}.{webhook-timestamp}.{raw body}"
    secret          = base64 decoding of the part after "whsec_"
    webhook-signature: space-separated "v1,<base64 HMAC-SHA256(secret, signed content)>";
                       a message is genuine if any v1 signature matches (constant-time compare)
    webhook-timestamp: integer seconds; reject if too far from now (replay protection)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.services import free_port

TOLERANCE = 5 * 60


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = TOLERANCE) -> bool:
    """True when the message carries a valid v1 signature under `secret` and a fresh stamp."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for part in headers.get("webhook-signature", "").split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return True
    return False


@dataclass
class Received:
    """One request as it arrived, and whether each known secret verifies it."""

    headers: dict[str, str]
    body: bytes
    verified_by: list[str]
    peer: str = ""  # the client's address and port: one per connection

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each request with the next scripted status (then 200), recording everything.

    `hold` makes a request wait (for a worker to be killed mid-delivery) until released.
    Connections are kept alive (HTTP/1.1) unless `keep_alive` is False: then each answer says
    "Connection: close" and the server closes it.
    """

    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    keep_alive: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def connections(self) -> int:
        """How many connections the requests came over (a client port is not reused while
        its last connection lingers in TIME_WAIT)."""
        return len({r.peer for r in self.received})

    def receive(self, headers: dict[str, str], body: bytes, peer: str) -> int:
        """Record one request; the status to answer."""
        verified = [s for s in self.secrets if verify(s, headers, body)]
        self.received.append(Received(headers, body, verified, peer))
        self.arrived.set()
        if self.hold is not None:
            self.hold.wait(30)
        return self.script.pop(0) if self.script else 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver would offer
    disable_nagle_algorithm = True  # the body is a write of its own after the headers
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.receiver.receive(headers, body, "{}:{}".format(*self.client_address))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        if not self.receiver.keep_alive:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


class running:
    """Serve a Receiver on a free loopback port for the duration of a `with` block."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def __enter__(self) -> Receiver:
        self.receiver.port = free_port()
        handler = type("Handler", (_Handler,), {"receiver": self.receiver})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.receiver.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        if self.receiver.hold is not None:
            self.receiver.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
