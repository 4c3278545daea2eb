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
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

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
    """

    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = [s for s in self.secrets if verify(s, headers, body)]
        self.received.append(Received(headers, body, verified))
        self.arrived.set()
        if self.hold is not None:
            self.hold.wait(30)
        status = self.script.pop(0) if self.script else 200
        return Response("ok", status=status)(environ, start_response)


class running:
    """Serve a Receiver on a free loopback port for the duration of a `with` block."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def __enter__(self) -> Receiver:
        self.receiver.port = free_port()
        self.server = make_server("127.0.0.1", self.receiver.port, self.receiver, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        if self.receiver.hold is not None:
            self.receiver.hold.set()
        self.server.shutdown()
        self.thread.join(5)
