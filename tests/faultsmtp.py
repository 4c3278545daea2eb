"""An SMTP server on loopback that counts what each recipient got and fails on request.

Built on aiosmtpd. Faults are decided per transaction by a `Plan`: refuse some recipients,
answer 4xx to a share of transactions, turn to 5.7.1 after a number of messages. It advertises
PIPELINING (aiosmtpd handles pipelined commands in order) unless told not to, and SMTPUTF8
unless told not to (a relay without it refuses UTF-8 envelopes). `envelopes` keeps each
accepted transaction's MAIL FROM parameters.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.services import free_port


@dataclass
class Plan:
    """What the server does wrong, decided per transaction."""

    transient_share: float = 0.0  # share of transactions answered 421 or 451
    refuse: dict[str, str] = field(default_factory=dict)  # rcpt -> reply at RCPT
    policy_after: int | None = None  # from this many accepted messages on: 550 5.7.1
    seed: int = 7
    delay: float = 0.0  # seconds the server takes over each message (a slow receiver)
    on_accept: Callable[[int], None] | None = None  # called with the running count, in order


class CountingHandler:
    """Counts accepted messages per recipient; keeps the raw messages when asked."""

    def __init__(self, plan: Plan, keep: bool = False, pipelining: bool = True) -> None:
        self.plan = plan
        self.keep = keep
        self.pipelining = pipelining
        self.counts: Counter[str] = Counter()
        self.messages: list[tuple[str, str, bytes]] = []  # mail_from, rcpt, data
        self.envelopes: list[tuple[str, tuple[str, ...]]] = []  # rcpt, MAIL FROM parameters
        self.refused: Counter[str] = Counter()  # reply code -> how many
        self.accepted = 0
        self.sessions = 0  # EHLOs: connections that got as far as a greeting
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self._lock:
            self.sessions += 1
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.plan.refuse.get(address)
        if refusal:
            with self._lock:
                self.refused[refusal[:3]] += 1
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0]
        if self.plan.delay:
            await asyncio.sleep(self.plan.delay)
        with self._lock:
            reply = self._fault()
            if reply is not None:
                self.refused[reply[:3]] += 1
                return reply
            self.accepted += 1
            self.counts[rcpt] += 1
            self.envelopes.append((rcpt, tuple(o.upper() for o in envelope.mail_options)))
            if self.keep:
                self.messages.append((envelope.mail_from, rcpt, envelope.original_content))
            if self.plan.on_accept is not None:
                self.plan.on_accept(self.accepted)
        return "250 2.0.0 OK: queued"

    def _fault(self) -> str | None:
        plan = self.plan
        if plan.policy_after is not None and self.accepted >= plan.policy_after:
            return "550 5.7.1 Message rejected: sender not authorised"
        if plan.transient_share and self._rng.random() < plan.transient_share:
            return self._rng.choice(
                ["451 4.3.0 Temporary local problem", "421 4.3.2 Service shutting down"]
            )
        return None

    def duplicates(self) -> int:
        with self._lock:
            return sum(n - 1 for n in self.counts.values() if n > 1)

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)


class FaultServer:
    """The handler served on a free loopback port; `.url` for CLARION_SMTP_URL."""

    def __init__(
        self,
        plan: Plan | None = None,
        keep: bool = False,
        pipelining: bool = True,
        smtputf8: bool = True,
    ):
        self.handler = CountingHandler(plan or Plan(), keep=keep, pipelining=pipelining)
        self.port = free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=smtputf8,
            data_size_limit=10 * 1024 * 1024,
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?max_connections=8"

    def __enter__(self) -> FaultServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
