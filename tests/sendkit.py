"""Helpers for delivery tests: audiences made in bulk, alerts, and an in-process task queue."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import insert, select

from clarion.models import (
    Alert,
    AlertKind,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)

NEWSLETTER_BODY = (
    "Ales has been held for **1,000 days**. Read [his letter](https://blog.example.org/letter) "
    "and write to him: https://blog.example.org/write?to=ales&lang=en.\n\n"
    "Thank you for standing with the people we write about.\n"
)


def make_list(session, slug: str = "alerts", **values) -> MailingList:
    """A mailing list."""
    ml = MailingList(slug=slug, name=values.pop("name", slug.title()), **values)
    session.add(ml)
    session.commit()
    return ml


def make_audience(session, mailing_list: MailingList, count: int, prefix: str = "r") -> list[int]:
    """`count` readers subscribed on the list, inserted in bulk; returns their ids in order."""
    first = session.scalar(select(Subscriber.id).order_by(Subscriber.id.desc()).limit(1)) or 0
    session.execute(
        insert(Subscriber),
        [
            {"uid": f"u{prefix}{i:07d}", "email": f"{prefix}{i}@example.org", "name": f"N{i}"}
            for i in range(count)
        ],
    )
    ids = list(
        session.scalars(select(Subscriber.id).where(Subscriber.id > first).order_by(Subscriber.id))
    )
    session.execute(
        insert(Subscription),
        [
            {
                "subscriber_id": sid,
                "list_id": mailing_list.id,
                "status": SubscriptionStatus.SUBSCRIBED,
            }
            for sid in ids
        ],
    )
    session.commit()
    return ids


def make_alert(session, lists: list[MailingList], **values) -> Alert:
    """A newsletter draft for the given lists."""
    alert = Alert(
        kind=values.pop("kind", AlertKind.NEWSLETTER),
        name=values.pop("name", "Day 1000"),
        subject=values.pop("subject", "1,000 days: write to Ales"),
        fields=values.pop("fields", {"body_md": NEWSLETTER_BODY}),
        audience=values.pop("audience", {"lists": [ml.id for ml in lists]}),
        **values,
    )
    session.add(alert)
    session.commit()
    return alert


def write_keys(directory: Path) -> dict[str, Path]:
    """An RSA-2048 and an Ed25519 DKIM key in PEM files."""
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    paths = {}
    for name, key in keys.items():
        path = directory / f"{name}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[name] = path
    return paths


class InlineQueue:
    """A task queue backend that runs the delivery tasks in this process, honouring countdowns."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._seq = itertools.count()
        self.published: list[tuple[str, tuple]] = []

    def __call__(self, name: str, args, countdown: float | None) -> None:
        self.published.append((name, tuple(args)))
        due = time.monotonic() + (countdown or 0)
        heapq.heappush(self._heap, (due, next(self._seq), name, tuple(args)))

    def _handlers(self) -> dict[str, Callable]:
        from clarion.bounces.refusals import BatchRefusals
        from clarion.delivery import batches, dispatch

        def refill(alert_id: int) -> None:
            batches.refill(alert_id)
            dispatch.finish_if_done(alert_id)

        def send_batch(alert_id: int, first_id: int, last_id: int) -> int:
            # As tasks.delivery.send_batch does: the bounce policy judges the batch's refusals.
            return dispatch.send_batch(alert_id, first_id, last_id, BatchRefusals)

        return {
            "tasks.delivery.dispatch": dispatch.dispatch,
            "tasks.delivery.send_batch": send_batch,
            "tasks.delivery.refill": refill,
        }

    def drain(self, timeout: float = 60.0, stop: Callable[[], bool] | None = None) -> int:
        """Run tasks (waiting for countdowns) until none is left, `stop()` or the timeout."""
        handlers = self._handlers()
        deadline = time.monotonic() + timeout
        ran = 0
        while self._heap and time.monotonic() < deadline:
            if stop is not None and stop():
                break
            due, _, name, args = heapq.heappop(self._heap)
            time.sleep(max(0.0, due - time.monotonic()))
            handlers[name](*args)
            ran += 1
        return ran
