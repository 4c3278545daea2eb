"""Figures for Prometheus, read from the database and Redis when scraped (any process can serve).

Counted at scrape time rather than by counters in each process: the web, workers and beat are
separate processes, and the ledger and Redis already hold the truth.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from clarion.db import session_factory, utcnow
from clarion.delivery import owed, rates
from clarion.models import (
    Alert,
    AlertStatus,
    BatchState,
    Bounce,
    ConsentRecord,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
    Signature,
    WebhookDelivery,
)
from clarion.redisconn import get_redis
from clarion.tracking import eventstream

QUEUES = ("default", "hooks", "bulk")


class ClarionCollector(Collector):
    """One scrape: the ledger by result, the send rate, queues, bounces and the click buffer."""

    def collect(self) -> Iterator[Metric]:
        with session_factory(reader=True)() as session:
            messages = GaugeMetricFamily(
                "clarion_messages", "Messages in the send ledger by result", labels=["result"]
            )
            found = dict.fromkeys((s.value for s in DeliveryStatus), 0)
            for status, n in session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ):
                found[DeliveryStatus(status).value] = n
            for status, n in sorted(found.items()):
                messages.add_metric([status], n)
            yield messages
            sending = list(
                session.scalars(select(Alert).where(Alert.status == AlertStatus.SENDING))
            )
            yield GaugeMetricFamily(
                "clarion_send_rate",
                "Messages a second handed to SMTP servers lately, all sending alerts",
                value=sum(rates.recent_rate(a) for a in sending),
            )
            yield GaugeMetricFamily(
                "clarion_alerts_sending", "Alerts being sent now", value=len(sending)
            )
            oldest = session.scalar(
                select(func.min(DeliveryBatch.due_at)).where(
                    DeliveryBatch.state != BatchState.DONE, DeliveryBatch.due_at <= utcnow()
                )
            )
            yield GaugeMetricFamily(
                "clarion_batch_wait_seconds",
                "How long the oldest due batch has waited for a worker (0 when none waits)",
                value=max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0,
            )
            bounces = GaugeMetricFamily(
                "clarion_bounces", "Bounces and complaints recorded, by class", labels=["class"]
            )
            for kind, n in session.execute(
                select(Bounce.classification, func.count()).group_by(Bounce.classification)
            ):
                bounces.add_metric([getattr(kind, "value", str(kind))], n)
            yield bounces
            hooks = GaugeMetricFamily(
                "clarion_webhook_deliveries",
                "Webhook deliveries by result (pending: waiting for a first or next attempt)",
                labels=["result"],
            )
            found = dict.fromkeys(("pending", "delivered", "failed"), 0)
            for state, n in session.execute(
                select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
            ):
                found[state] = n
            for state, n in sorted(found.items()):
                hooks.add_metric([state], n)
            yield hooks
            yield from _confirmations_owed(session)
        yield from _redis_figures()


def _confirmations_owed(session) -> Iterator[Metric]:
    waiting = GaugeMetricFamily(
        "clarion_confirmation_mails_owed",
        "Confirmation mails asked for and not yet sent, refused or given up, by kind",
        labels=["kind"],
    )
    asked = []
    for kind, model in (("signup", ConsentRecord), ("signature", Signature)):
        count, since = owed.waiting(session, model)
        waiting.add_metric([kind], count)
        asked += [since] if since else []
    oldest = min(asked, default=None)
    yield waiting
    yield GaugeMetricFamily(
        "clarion_confirmation_mail_oldest_seconds",
        "How long ago the oldest confirmation mail still owed was asked for (0 when none)",
        value=max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0,
    )


def _redis_figures() -> Iterator[Metric]:
    redis = get_redis()
    depth = GaugeMetricFamily("clarion_queue_depth", "Tasks waiting in a queue", labels=["queue"])
    for queue in QUEUES:
        depth.add_metric([queue], int(redis.llen(queue)))
    yield depth
    buckets, total = rates.batch_seconds()
    yield HistogramMetricFamily(
        "clarion_batch_duration_seconds",
        "How long workers took to send one batch",
        buckets=buckets,
        sum_value=total,
    )
    yield GaugeMetricFamily(
        "clarion_click_buffer_length",
        "Clicks and opens waiting in Redis to be written to the database",
        value=eventstream.backlog(),
    )


def collect() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClarionCollector())
    return generate_latest(registry)
