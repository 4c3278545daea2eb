"""What an import does: the options an editor chose, and the checked rows written in bulk
(subscribers, subscriptions, tags, consent records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clarion import throttle
from clarion.audience import bulk, tags
from clarion.audience.directory import SUPPRESSION_REASONS
from clarion.db import utcnow
from clarion.i18n import admin_gettext
from clarion.models import (
    ConsentRecord,
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from clarion.models._types import new_uid

_SUBSCRIBERS = Subscriber.__table__
_SUBSCRIPTIONS = Subscription.__table__
_SUBSCRIBER_TAGS = SubscriberTag.__table__
_CONSENT_RECORDS = ConsentRecord.__table__


@dataclass
class ImportOptions:
    """What the editor chose: the file, how to read it, which column is what, which lists."""

    file_name: str
    list_ids: list[int]
    mapping: dict[int, str]
    encoding: str = "auto"
    delimiter: str = ","
    has_header: bool = True
    extra_tags: list[str] = field(default_factory=list)
    editor_email: str = ""
    # What the reader agreed to, when the caller has it word for word (the API); else the
    # consent record says which file and column the consent came from.
    consent_statement: str = ""

    def to_json(self) -> dict[str, Any]:
        """As stored on the job."""
        data = asdict(self)
        data["mapping"] = {str(k): v for k, v in self.mapping.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImportOptions:
        """Back from the job."""
        values = dict(data)
        values["mapping"] = {int(k): v for k, v in data["mapping"].items()}
        return cls(**values)


@dataclass
class ParsedRow:
    """A data row: its line in the file, its cells, and its checked values or why it failed."""

    line: int
    cells: list[str]
    email: str = ""
    name: str | None = None
    language: str = ""
    tags: list[str] = field(default_factory=list)
    consent: bool = False
    reason: str = ""


class ImportWriter:
    """Writes checked rows in bulk: a few statements per chunk, never one per row."""

    def __init__(self, session: Session, options: ImportOptions) -> None:
        self.session = session
        self.options = options
        self.tag_ids: dict[str, int] = {}
        for raw in options.extra_tags:
            self._tag_id(raw)

    def _tag_id(self, name: str) -> int:
        key = name.lower()
        if key not in self.tag_ids:
            self.tag_ids[key] = tags.find_or_create(self.session, name).id
        return self.tag_ids[key]

    def write(self, chunk: list[ParsedRow]) -> dict[str, int]:
        rows = [r for r in chunk if not r.reason]
        emails = [r.email for r in rows]
        # Erased readers are suppressed by the keyed hash of their address alone.
        keys = {throttle.address_key(e): e for e in emails}
        suppressed = {
            email or keys[key]: reason
            for email, key, reason in self.session.execute(
                select(Suppression.email, Suppression.email_hash, Suppression.reason).where(
                    or_(Suppression.email.in_(emails), Suppression.email_hash.in_(list(keys)))
                )
            ).all()
        }
        for row in rows:
            if row.email in suppressed:
                reason = suppressed[row.email]  # a StrEnum: the label table finds it as text
                row.reason = admin_gettext(
                    "Suppressed (%(reason)s): this address receives no mail.",
                    reason=admin_gettext(SUPPRESSION_REASONS.get(reason, reason)),
                )
        rows = [r for r in rows if not r.reason]
        existing = dict(
            self.session.execute(
                select(Subscriber.email, Subscriber.id).where(
                    Subscriber.email.in_([r.email for r in rows])
                )
            ).all()
        )
        ids = {**existing, **self._insert_subscribers([r for r in rows if r.email not in existing])}
        changed = self._subscriptions(rows, ids, set(existing.values()))
        self._tags(rows, ids)
        self._consents([r for r in rows if ids[r.email] in changed], ids, changed)
        created = sum(1 for r in rows if r.email not in existing)
        updated = sum(1 for r in rows if r.email in existing and ids[r.email] in changed)
        return {"created": created, "updated": updated}

    def _insert_subscribers(self, rows: list[ParsedRow]) -> dict[str, int]:
        if not rows:
            return {}
        now = utcnow()
        values = [
            {
                "uid": new_uid(),
                "email": r.email,
                "name": r.name,
                "name_search": r.name.lower() if r.name else None,
                "language": r.language,
                "source": "import",
                "created_at": now,
                "updated_at": now,
            }
            for r in rows
        ]
        bulk.insert_rows(self.session, _SUBSCRIBERS, values)
        emails = [r.email for r in rows]
        found = self.session.execute(
            select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(emails))
        )
        return dict(found.all())

    def _subscriptions(
        self, rows: list[ParsedRow], ids: dict[str, int], existing_ids: set[int]
    ) -> dict[int, list[int]]:
        """Add or confirm subscriptions; returns subscriber id -> lists changed for them."""
        now = utcnow()
        current: dict[tuple[int, int], SubscriptionStatus] = {}
        if existing_ids:
            for sid, lid, status in self.session.execute(
                select(Subscription.subscriber_id, Subscription.list_id, Subscription.status).where(
                    Subscription.subscriber_id.in_(existing_ids),
                    Subscription.list_id.in_(self.options.list_ids),
                )
            ):
                current[(sid, lid)] = SubscriptionStatus(status)
        new_rows: list[dict[str, Any]] = []
        confirm: list[tuple[int, int]] = []
        changed: dict[int, list[int]] = {}
        for row in rows:
            sid = ids[row.email]
            left = []
            for lid in self.options.list_ids:
                status = current.get((sid, lid))
                if status is None:
                    new_rows.append(self._subscription(sid, lid, row.consent, now))
                    changed.setdefault(sid, []).append(lid)
                elif status == SubscriptionStatus.PENDING and row.consent:
                    confirm.append((sid, lid))
                    changed.setdefault(sid, []).append(lid)
                elif status == SubscriptionStatus.UNSUBSCRIBED:
                    left.append(lid)
            if left and sid not in changed:
                row.reason = admin_gettext(
                    "Left this list earlier; an import never re-adds someone who left."
                )
        if new_rows:
            bulk.insert_rows(self.session, _SUBSCRIPTIONS, new_rows)
        for sid, lid in confirm:
            self.session.execute(
                update(Subscription)
                .where(Subscription.subscriber_id == sid, Subscription.list_id == lid)
                .values(status=SubscriptionStatus.SUBSCRIBED, subscribed_at=now, updated_at=now)
            )
        return changed

    @staticmethod
    def _subscription(sid: int, lid: int, consent: bool, now) -> dict[str, Any]:
        return {
            "subscriber_id": sid,
            "list_id": lid,
            "status": SubscriptionStatus.SUBSCRIBED if consent else SubscriptionStatus.PENDING,
            "source": "import",
            "created_at": now,
            "updated_at": now,
            "subscribed_at": now if consent else None,
        }

    def _tags(self, rows: list[ParsedRow], ids: dict[str, int]) -> None:
        wanted = {
            (ids[r.email], self._tag_id(t))
            for r in rows
            if not r.reason
            for t in [*r.tags, *self.options.extra_tags]
        }
        if not wanted:
            return
        have = set(
            self.session.execute(
                select(SubscriberTag.subscriber_id, SubscriberTag.tag_id).where(
                    SubscriberTag.subscriber_id.in_({sid for sid, _ in wanted})
                )
            )
        )
        new = [{"subscriber_id": s, "tag_id": t} for s, t in sorted(wanted - have)]
        if new:
            bulk.insert_rows(self.session, _SUBSCRIBER_TAGS, new)

    def _consents(
        self, rows: list[ParsedRow], ids: dict[str, int], changed: dict[int, list[int]]
    ) -> None:
        if not rows:
            return
        now = utcnow()
        who = self.options.editor_email or "the command line"
        bulk.insert_rows(
            self.session,
            _CONSENT_RECORDS,
            [
                {
                    "subscriber_id": ids[r.email],
                    "action": "import",
                    "list_ids": changed[ids[r.email]],
                    "details": {
                        "file": self.options.file_name,
                        "editor": who,
                        "line": r.line,
                        "consent": r.consent,
                    },
                    "source": "import",
                    "form": "import",
                    "consent_text": self.options.consent_statement
                    or (
                        f"Imported from {self.options.file_name} by {who}; "
                        + ("the consent column says yes." if r.consent else "no consent given.")
                    ),
                    "consent_version": "",
                    "created_at": now,
                    "confirmed_at": now if r.consent else None,
                }
                for r in rows
            ],
        )


def add_confirmed(
    session: Session, options: ImportOptions, email: str, name: str | None, language: str,
    tags: list[str],
) -> dict[str, Any]:  # fmt: skip
    """One reader added as an import adds them, consent given: the same rules (suppressed
    addresses refused, who left is never re-added), one consent record with the statement."""
    row = ParsedRow(line=0, cells=[], email=email, name=name, language=language, tags=tags,
                    consent=True)  # fmt: skip
    counts = ImportWriter(session, options).write([row])
    return {**counts, "refused": row.reason}
