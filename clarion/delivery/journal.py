"""The send journal: each message's fate in Redis the moment it is known, for a killed worker.

Outcomes reach the ledger in bulk, every FLUSH_EVERY messages or FLUSH_SECONDS. A worker killed
in between would leave up to that many sent messages looking unsent, and the sweep would send
them again. So each message is also journalled as it goes, in one Redis hash per alert:
`a` (attempt) before its body is written to the SMTP server, then `s…` when the server answered
250 or `x` when it did not take it. The commands are written to Redis's socket without waiting
for the answers, which are read in bulk at the next flush: a record costs one socket write, not a
round trip. An outcome rides along with the next attempt, which on a pipelined connection comes
a moment later (one HSET a message); if the worker dies in that moment the message merely counts
as in doubt. After the flush has committed the outcomes, their entries are deleted.

Before the sweep puts an abandoned claim back in the queue it reads the journal (`recover`):
rows journalled as sent are recorded as sent; rows with only an attempt may or may not have
been delivered (at most the one or two in flight on each connection) and go back to the queue
counted as possible duplicates; the rest were never sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

ATTEMPT = b"a"
NOT_TAKEN = b"x"
SENT = b"s"
KEEP_SECONDS = 7 * 24 * 3600  # a journal outlives any send; normally it is emptied as it goes
DRAIN_AFTER = 1024  # unread answers allowed to pile up before they are read


def journal_key(alert_id: int) -> str:
    """The Redis hash of an alert's journal: delivery id → entry."""
    return f"clarion:journal:{alert_id}"


class Journal:
    """One batch's writer: commands go out on a connection of its own, answers read later."""

    def __init__(self, client: redis.Redis, alert_id: int) -> None:
        self.key = journal_key(alert_id)
        self._pool = client.connection_pool
        self._conn = None
        self._unread = 0
        self._outcomes: list[object] = []  # field, value, … waiting for the next write

    def _send(self, *args: object) -> None:
        if self._conn is None:
            self._conn = self._pool.get_connection()
            self._send_now("EXPIRE", self.key, KEEP_SECONDS)
        self._send_now(*args)
        if self._unread >= DRAIN_AFTER:
            self.drain()

    def _send_now(self, *args: object) -> None:
        assert self._conn is not None
        # No health check: a PING would read the answer of a command still unread.
        self._conn.send_command(*args, check_health=False)
        self._unread += 1

    def attempt(self, delivery_id: int) -> None:
        """The body is about to go out: from now on the reader may receive it."""
        self._send("HSET", self.key, *self._outcomes, delivery_id, ATTEMPT)
        self._outcomes = []

    def sent(self, delivery_id: int, server: str, message_id: str, reply: str) -> None:
        """The server took the message (250); written with the next attempt or settle."""
        entry = "\t".join((str(int(time.time())), server, message_id, reply[:200]))
        self._outcomes += (delivery_id, SENT + entry.encode())

    def not_taken(self, delivery_id: int) -> None:
        """The server refused or deferred the message: it was not delivered."""
        self._outcomes += (delivery_id, NOT_TAKEN)

    def write(self) -> None:
        """Send the outcomes still waiting for an attempt to ride along with."""
        if self._outcomes:
            self._send("HSET", self.key, *self._outcomes)
            self._outcomes = []

    def settle(self, delivery_ids: list[int]) -> None:
        """The ledger holds these outcomes now: forget them, and read every pending answer."""
        settled = set(delivery_ids)
        waiting = self._outcomes
        # Outcomes the ledger already holds need not reach the journal at all.
        self._outcomes = [
            x
            for i in range(0, len(waiting), 2)
            if waiting[i] not in settled
            for x in waiting[i : i + 2]
        ]
        self.write()
        if delivery_ids and self._conn is not None:
            self._send_now("HDEL", self.key, *delivery_ids)
        self.drain()

    def drain(self) -> None:
        """Read the answers still waiting; a Redis error surfaces here."""
        conn = self._conn
        try:
            while self._unread:
                assert conn is not None
                conn.read_response()
                self._unread -= 1
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give the connection back (dropped if answers are unread: it is not reusable)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._unread:
            self._unread = 0
            conn.disconnect()
        self._pool.release(conn)


@dataclass(frozen=True)
class Entry:
    """What the journal says about one delivery."""

    state: bytes  # ATTEMPT, SENT or NOT_TAKEN
    sent_at: datetime | None = None
    server: str | None = None
    message_id: str | None = None
    reply: str = ""


def _parse(raw: bytes) -> Entry:
    if not raw.startswith(SENT):
        return Entry(raw[:1])
    parts = raw[1:].decode(errors="replace").split("\t", 3)
    stamp, server, message_id, reply = parts + [""] * (4 - len(parts))
    sent_at = datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else None
    return Entry(SENT, sent_at, server or None, message_id or None, reply)


def recover(client: redis.Redis, alert_id: int, delivery_ids: list[int]) -> dict[int, Entry]:
    """The journal's entries for these deliveries (those it has)."""
    found: dict[int, Entry] = {}
    key = journal_key(alert_id)
    for i in range(0, len(delivery_ids), 1000):
        chunk = delivery_ids[i : i + 1000]
        for delivery_id, raw in zip(chunk, client.hmget(key, chunk), strict=True):
            if raw:
                found[delivery_id] = _parse(raw)
    return found


def forget(client: redis.Redis, alert_id: int, delivery_ids: list[int]) -> None:
    """Drop the entries the sweep has written to the ledger."""
    key = journal_key(alert_id)
    for i in range(0, len(delivery_ids), 1000):
        client.hdel(key, *delivery_ids[i : i + 1000])
