"""/api/v1/suppressions and /api/v1/bounces: addresses that get no mail and why, and lifting
a suppression (owners)."""

from __future__ import annotations

from sqlalchemy import select

from clarion.audience import directory
from clarion.models import Bounce, Suppression
from clarion.paging import keyset_page
from webapp.api.v1 import schemas as s
from webapp.api.v1.core import Reply, dump, ip, operation, token_use
from webapp.extensions import db

TAG = "suppressions"


@operation(
    "/suppressions",
    "GET",
    scope="read",
    permission="lift_suppression",
    tag=TAG,
    query=s.PageQuery,
    response=s.SuppressionPage,
    summary="Suppressed addresses (bounces, complaints, erasures), newest first",
)
def suppressions_index(query: dict) -> Reply:
    """A page of suppressions; an erased reader's shows no address."""
    page = keyset_page(
        db(),
        select(Suppression),
        Suppression.id,
        lambda x: x.id,
        after=query.get("after"),
        before=query.get("before"),
    )
    items = [
        {
            "id": x.id,
            "email": x.email,
            "reason": getattr(x.reason, "value", str(x.reason)),
            "detail": x.detail or "",
            "created_at": x.created_at,
        }
        for x in page.items
    ]
    body = {"items": items, "after": page.after, "before": page.before}
    return Reply(dump(s.SuppressionPage, body))


@operation(
    "/suppressions/lift",
    "POST",
    scope="write",
    permission="lift_suppression",
    tag=TAG,
    body=s.LiftIn,
    response=s.Lifted,
    summary="Let a suppressed address receive mail again (owners)",
)
def suppression_lift(body: dict) -> Reply:
    """As the admin lifts it: the subscriptions stay as they are."""
    directory.lift_suppression(db(), token_use().editor, body["email"].strip().lower(), ip())
    return Reply({"lifted": True})


@operation(
    "/bounces",
    "GET",
    scope="read",
    permission="lift_suppression",
    tag=TAG,
    query=s.PageQuery,
    response=s.BouncePage,
    summary="Bounces and complaints received, newest first (owners)",
)
def bounces_index(query: dict) -> Reply:
    """A page of classified reports: what came back, for whom, and what was done."""
    page = keyset_page(
        db(),
        select(Bounce),
        Bounce.id,
        lambda b: b.id,
        after=query.get("after"),
        before=query.get("before"),
    )
    keys = (
        "id",
        "received_at",
        "source",
        "email",
        "status_code",
        "reason",
        "action",
        "alert_id",
        "subscriber_id",
    )
    items = [
        {**{k: getattr(b, k) for k in keys}, "classification": b.classification.value}
        for b in page.items
    ]
    return Reply(dump(s.BouncePage, {"items": items, "after": page.after, "before": page.before}))
