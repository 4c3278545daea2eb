"""The shapes /api/v1 takes and gives, as marshmallow schemas: they check requests and
become the OpenAPI document's components, so the document cannot drift from the code."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, validate, validates_schema
from marshmallow import fields as mf

from clarion.inputs import MAX_ID, has_control_chars

SLUG = validate.Regexp(r"^[a-z0-9-]{1,100}$", error="Lower-case letters, digits and dashes.")


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Text may not contain the NUL character.")


def _one_line(value: str) -> None:
    if has_control_chars(value):
        raise ValidationError("Write this on one line, without control characters.")


def _checks(extra: Any, *checks: Any) -> list[Any]:
    return [*checks, *([extra] if extra else [])]


def Line(maximum: int = 300, **kw: Any) -> mf.String:
    """One line of text."""
    checks = _checks(kw.pop("validate", None), validate.Length(max=maximum), _one_line)
    return mf.String(validate=checks, **kw)


def Text(maximum: int = 50_000, **kw: Any) -> mf.String:
    """Text that may span lines."""
    checks = _checks(kw.pop("validate", None), validate.Length(max=maximum), _no_nul)
    return mf.String(validate=checks, **kw)


def Id(**kw: Any) -> mf.Integer:
    """A database id."""
    return mf.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw)


def QueryId(**kw: Any) -> mf.Integer:
    """An id in the query string, where every value arrives as text."""
    return mf.Integer(validate=validate.Range(min=1, max=MAX_ID), **kw)


class In(Schema):
    """Requests: unknown fields are refused, so a typo is not silently ignored."""

    class Meta:
        unknown = RAISE


class Out(Schema):
    """Answers."""

    class Meta:
        unknown = EXCLUDE
        ordered = True


class Problem(Out):
    """RFC 9457 problem details."""

    type = mf.String(required=True)
    title = mf.String(required=True)
    status = mf.Integer(required=True)
    detail = mf.String(required=True)
    errors = mf.List(
        mf.Dict(keys=mf.String(), values=mf.String()),
        metadata={"description": "Each field (or header) to fix: {field, detail}."},
    )


class PageQuery(In):
    """Keyset paging: newest first; follow `after` for older items, `before` for newer."""

    class Meta:
        unknown = EXCLUDE

    after = QueryId()
    before = QueryId()


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A page schema for items of one kind."""
    return type(
        name,
        (Out,),
        {
            "items": mf.List(mf.Nested(item), required=True),
            "after": mf.Integer(allow_none=True, required=True),
            "before": mf.Integer(allow_none=True, required=True),
        },
    )


# --- Subscribers --------------------------------------------------------------------------


class Membership(Out):
    list_id = mf.Integer(required=True)
    slug = mf.String(required=True)
    status = mf.String(required=True)


class SubscriberOut(Out):
    id = mf.Integer(required=True)
    email = mf.String(required=True)
    name = mf.String(allow_none=True, required=True)
    language = mf.String(required=True)
    source = mf.String(allow_none=True, required=True)
    created_at = mf.DateTime(required=True)
    lists = mf.List(mf.Nested(Membership), required=True)
    tags = mf.List(mf.String(), required=True)
    suppressed = mf.Boolean(required=True)


SubscriberPage = page_of(SubscriberOut, "SubscriberPage")


class ConsentIn(In):
    statement = Text(2000, required=True, validate=validate.Length(min=10, max=2000))


class SubscriberCreate(In):
    email = Line(320, required=True)
    name = Line(200, load_default="")
    language = Line(8, load_default="en")
    lists = mf.List(Id(), required=True, validate=validate.Length(min=1, max=100))
    tags = mf.List(Line(64), load_default=list, validate=validate.Length(max=100))
    confirmed = mf.Boolean(load_default=False)
    consent = mf.Nested(ConsentIn, load_default=None, allow_none=True)
    source = Line(64, load_default=None, allow_none=True)

    @validates_schema
    def _consent_for_confirmed(self, data: dict, **_: Any) -> None:
        if data.get("confirmed") and not data.get("consent"):
            raise ValidationError(
                "Adding a reader as confirmed needs the consent statement they agreed to.",
                "consent",
            )


class SubscriberCreated(Out):
    status = mf.String(
        required=True,
        metadata={"description": "pending: a confirmation mail decides; subscribed: confirmed"},
    )
    subscriber = mf.Nested(SubscriberOut, allow_none=True, required=True)
    message = mf.String(required=True)


class SubscriberUpdate(In):
    name = Line(200)
    language = Line(8)
    lists = mf.List(Id(), validate=validate.Length(max=100))
    tags = mf.List(Line(64), validate=validate.Length(max=100))


class SubscriberQuery(PageQuery):
    q = Line(200, load_default="")
    email = Line(320)
    list = QueryId()
    tag = QueryId()
    status = mf.String(
        load_default="",
        validate=validate.OneOf(["", "pending", "subscribed", "unsubscribed", "suppressed"]),
    )


class Erased(Out):
    erased = mf.Boolean(required=True)


# --- Lists and tags -----------------------------------------------------------------------


class ListOut(Out):
    id = mf.Integer(required=True)
    slug = mf.String(required=True)
    name = mf.String(required=True)
    description = mf.String(required=True)
    is_public = mf.Boolean(required=True)
    from_name = mf.String(allow_none=True, required=True)
    from_email = mf.String(allow_none=True, required=True)
    reply_to = mf.String(allow_none=True, required=True)
    subscribed = mf.Integer(required=True)
    pending = mf.Integer(required=True)


class ListsOut(Out):
    items = mf.List(mf.Nested(ListOut), required=True)


class ListIn(In):
    name = Line(200, required=True)
    slug = Line(64, required=True)
    description = Text(2000, load_default="")
    is_public = mf.Boolean(load_default=True)
    from_name = Line(200, load_default="")
    from_email = Line(320, load_default="")
    reply_to = Line(320, load_default="")


class ListUpdate(In):
    name = Line(200)
    slug = Line(64)
    description = Text(2000)
    is_public = mf.Boolean()
    from_name = Line(200)
    from_email = Line(320)
    reply_to = Line(320)


class TagOut(Out):
    id = mf.Integer(required=True)
    name = mf.String(required=True)
    subscribers = mf.Integer(required=True)


class TagsOut(Out):
    items = mf.List(mf.Nested(TagOut), required=True)


class TagIn(In):
    name = Line(64, required=True)


class Deleted(Out):
    deleted = mf.Boolean(required=True)


# --- Alerts --------------------------------------------------------------------------------


class AudienceIn(In):
    lists = mf.List(mf.Raw(), load_default=list)
    tags = mf.List(mf.Raw(), load_default=list)
    languages = mf.List(Line(8), load_default=list)
    # A petition alert leaves out its petition's signers unless this is true.
    include_signers = mf.Boolean()
    # Conditions on what readers did: all/any/not over typed conditions (README "Segments").
    conditions = mf.Dict()


class AlertIn(In):
    """The same JSON as `clarion alerts create FILE.json`: lists by id or slug, tags by id or
    name; read by the same loader."""

    class Meta:
        unknown = INCLUDE  # the loader names unknown fields itself (and knows new ones)

    kind = Line(32, required=True)
    subject = Line(300)
    name = Line(300)
    preheader = Line(300)
    fields = mf.Dict(keys=mf.String(), values=Text())
    audience = mf.Nested(AudienceIn)
    sender_list_id = mf.Raw(allow_none=True)
    archive_public = mf.Boolean()
    layout_mjml = Text(200_000)


class AlertUpdate(AlertIn):
    kind = Line(32)


class AlertOut(Out):
    id = mf.Integer(required=True)
    kind = mf.String(required=True)
    name = mf.String(required=True)
    subject = mf.String(required=True)
    preheader = mf.String(required=True)
    status = mf.String(required=True)
    status_reason = mf.String(required=True)
    fields = mf.Dict(keys=mf.String(), values=mf.String(), required=True)
    audience = mf.Dict(required=True)
    sender_list_id = mf.Integer(allow_none=True, required=True)
    archive_public = mf.Boolean(required=True)
    scheduled_at = mf.DateTime(allow_none=True, required=True)
    started_at = mf.DateTime(allow_none=True, required=True)
    finished_at = mf.DateTime(allow_none=True, required=True)
    created_at = mf.DateTime(required=True)


AlertPage = page_of(AlertOut, "AlertPage")


class AlertQuery(PageQuery):
    status = mf.String(
        load_default="",
        validate=validate.OneOf(
            ["", "draft", "scheduled", "sending", "paused", "sent", "cancelled"]
        ),
    )


class PreviewOut(Out):
    subject = mf.String(required=True)
    html = mf.String(required=True)
    text = mf.String(required=True)


class ScheduleIn(In):
    at = Line(40, required=True, metadata={"description": "ISO 8601; without a zone: UTC"})


class ProgressOut(Out):
    alert_id = mf.Integer(required=True)
    status = mf.String(required=True)
    status_reason = mf.String(required=True)
    total = mf.Integer(required=True)
    counts = mf.Dict(keys=mf.String(), values=mf.Integer(), required=True)
    remaining = mf.Integer(required=True)
    rate = mf.Float(required=True)
    eta_seconds = mf.Integer(allow_none=True, required=True)
    dispatched = mf.Boolean(required=True)
    done = mf.Boolean(required=True)
    started_at = mf.String(allow_none=True, required=True)
    finished_at = mf.String(allow_none=True, required=True)
    possible_duplicates = mf.Integer(required=True)
    stalled = mf.List(mf.String(), required=True)


class LinkStatsOut(Out):
    index = mf.Integer(required=True)
    url = mf.String(required=True)
    total = mf.Integer(required=True)
    unique = mf.Integer(required=True)
    scanner = mf.Integer(required=True)


class StatsOut(Out):
    recipients = mf.Integer(required=True)
    statuses = mf.Dict(keys=mf.String(), values=mf.Integer(), required=True)
    hard_bounces = mf.Integer(required=True)
    soft_bounces = mf.Integer(required=True)
    complaints = mf.Integer(required=True)
    unsubscribes = mf.Integer(required=True)
    total_clicks = mf.Integer(required=True)
    unique_clicks = mf.Integer(required=True)
    scanner_clicks = mf.Integer(required=True)
    links = mf.List(mf.Nested(LinkStatsOut), required=True)
    signatures = mf.Integer(required=True)
    opens = mf.Integer(required=True)
    unique_opens = mf.Integer(required=True)


# --- Petitions -----------------------------------------------------------------------------


class PetitionIn(In):
    title = Line(300, required=True)
    slug = Line(100, required=True)
    body_md = Text(50_000, load_default="")
    target = Line(300, load_default="")
    goal = mf.Integer(strict=True, load_default=0, validate=validate.Range(0, 100_000_000))
    raise_goal = mf.Boolean(load_default=False)
    deadline = Line(40, load_default="", metadata={"description": "ISO 8601; without a zone: UTC"})
    require_confirmation = mf.Boolean(load_default=False)
    is_open = mf.Boolean(load_default=True)


class PetitionUpdate(In):
    title = Line(300)
    slug = Line(100)
    body_md = Text(50_000)
    target = Line(300)
    goal = mf.Integer(strict=True, validate=validate.Range(0, 100_000_000))
    raise_goal = mf.Boolean()
    deadline = Line(40)
    require_confirmation = mf.Boolean()
    is_open = mf.Boolean()


class PetitionOut(Out):
    id = mf.Integer(required=True)
    slug = mf.String(required=True)
    title = mf.String(required=True)
    body_md = mf.String(required=True)
    target = mf.String(required=True)
    goal = mf.Integer(required=True)
    raise_goal = mf.Boolean(required=True)
    deadline = mf.DateTime(allow_none=True, required=True)
    require_confirmation = mf.Boolean(required=True)
    is_open = mf.Boolean(required=True)
    count = mf.Integer(required=True)
    displayed_goal = mf.Integer(required=True)
    accepting = mf.Boolean(required=True)


class PetitionsOut(Out):
    items = mf.List(mf.Nested(PetitionOut), required=True)


class SignatureOut(Out):
    id = mf.Integer(required=True)
    name = mf.String(required=True)
    email = mf.String(required=True)
    country = mf.String(required=True)
    comment = mf.String(required=True)
    source = mf.String(allow_none=True, required=True)
    language = mf.String(allow_none=True, required=True)
    created_at = mf.DateTime(required=True)
    confirmed_at = mf.DateTime(allow_none=True, required=True)


SignaturePage = page_of(SignatureOut, "SignaturePage")


class SignIn(In):
    name = Line(200, required=True)
    email = Line(320, required=True)
    country = Line(2, load_default="")
    comment = Text(2000, load_default="")
    source = Line(64, load_default=None, allow_none=True)
    lists = mf.List(Id(), load_default=list, validate=validate.Length(max=100))
    language = Line(8, load_default=None, allow_none=True)


class SignOut(Out):
    status = mf.String(
        required=True,
        metadata={"description": "signed: counted now; check_inbox: a confirmation mail decides"},
    )
    lists_pending = mf.List(mf.Integer(), required=True)


# --- Suppressions --------------------------------------------------------------------------


class SuppressionOut(Out):
    id = mf.Integer(required=True)
    email = mf.String(
        allow_none=True, required=True, metadata={"description": "null for an erased reader"}
    )
    reason = mf.String(required=True)
    detail = mf.String(required=True)
    created_at = mf.DateTime(required=True)


SuppressionPage = page_of(SuppressionOut, "SuppressionPage")


class BounceOut(Out):
    id = mf.Integer(required=True)
    received_at = mf.DateTime(required=True)
    source = mf.String(required=True)
    email = mf.String(required=True)
    classification = mf.String(required=True)
    status_code = mf.String(required=True)
    reason = mf.String(required=True)
    action = mf.String(required=True)
    alert_id = mf.Integer(allow_none=True, required=True)
    subscriber_id = mf.Integer(allow_none=True, required=True)


BouncePage = page_of(BounceOut, "BouncePage")


class LiftIn(In):
    email = Line(320, required=True)


class Lifted(Out):
    lifted = mf.Boolean(required=True)


# --- Webhooks ------------------------------------------------------------------------------

WEBHOOK_EVENTS = validate.OneOf(
    (
        "subscriber.confirmed",
        "subscriber.unsubscribed",
        "subscriber.bounced",
        "subscriber.complained",
        "subscriber.erased",
        "petition.signed",
        "alert.started",
        "alert.finished",
    )
)


class WebhookIn(In):
    url = Line(2000, required=True)
    events = mf.List(
        mf.String(validate=WEBHOOK_EVENTS), required=True, validate=validate.Length(min=1, max=8)
    )
    description = Line(200, load_default="")


class WebhookUpdate(In):
    url = Line(2000)
    events = mf.List(mf.String(validate=WEBHOOK_EVENTS), validate=validate.Length(min=1, max=8))
    description = Line(200)
    enabled = mf.Boolean(metadata={"description": "true also forgets an earlier failing spell"})


class WebhookOut(Out):
    id = mf.Integer(required=True)
    url = mf.String(required=True)
    description = mf.String(required=True)
    events = mf.List(mf.String(), required=True)
    enabled = mf.Boolean(required=True)
    disabled_reason = mf.String(required=True)
    failing_since = mf.DateTime(allow_none=True, required=True)
    created_at = mf.DateTime(required=True)


class WebhookCreated(WebhookOut):
    secret = mf.String(
        required=True, metadata={"description": "whsec_…: shown this once, sign checks use it"}
    )


class WebhooksOut(Out):
    items = mf.List(mf.Nested(WebhookOut), required=True)


class WebhookSecret(Out):
    secret = mf.String(
        required=True, metadata={"description": "the new secret; the old one signs too for 24 h"}
    )


class WebhookDeliveryOut(Out):
    id = mf.Integer(required=True)
    webhook_id = mf.String(required=True, metadata={"description": "the webhook-id header"})
    type = mf.String(required=True)
    state = mf.String(required=True, metadata={"description": "pending, delivered or failed"})
    attempts = mf.Integer(required=True)
    last_status = mf.Integer(allow_none=True, required=True)
    last_error = mf.String(required=True)
    last_duration_ms = mf.Integer(allow_none=True, required=True)
    last_attempt_at = mf.DateTime(allow_none=True, required=True)
    delivered_at = mf.DateTime(allow_none=True, required=True)
    created_at = mf.DateTime(required=True)


class WebhookDeliveriesOut(Out):
    items = mf.List(mf.Nested(WebhookDeliveryOut), required=True)
