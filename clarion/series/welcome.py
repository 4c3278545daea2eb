"""A list's welcome mail: a one-step series (joined the list, at once) that the list's page sets.

The welcome alert is frozen and `sending` (role welcome) before it becomes the step; a reader
who confirms gets it in the confirming transaction (entering's fast path), exactly once: the
ledger is unique per (alert, reader). Editors can still pause the series, or add steps to it on
the series pages.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clarion.i18n import admin_gettext
from clarion.models import (
    Editor,
    MailingList,
    Series,
    SeriesEntry,
    SeriesStatus,
    SeriesStep,
    SeriesTrigger,
)
from clarion.series import entering


def series_of(session: Session, list_id: int) -> Series | None:
    """The list's welcome series, if it has one."""
    return session.scalar(
        select(Series).where(Series.list_id == list_id, Series.welcome.is_(True)).limit(1)
    )


def first_step(session: Session, series_id: int) -> SeriesStep | None:
    """A series' first step."""
    return session.scalar(
        select(SeriesStep)
        .where(SeriesStep.series_id == series_id)
        .order_by(SeriesStep.position)
        .limit(1)
    )


def alert_id_of(session: Session, list_id: int) -> int | None:
    """The alert of the list's welcome mail (its series' first step), or None."""
    series = series_of(session, list_id)
    step = first_step(session, series.id) if series is not None else None
    return step.alert_id if step is not None else None


def _name(session: Session, mailing_list: MailingList) -> str:
    base = admin_gettext("Welcome: %(list)s", list=mailing_list.name)[:190]
    name, n = base, 1
    while session.scalar(select(Series.id).where(Series.name == name)) is not None:
        n += 1
        name = f"{base} ({n})"
    return name


def replace(
    session: Session, editor: Editor, mailing_list: MailingList, alert_id: int | None
) -> Series | None:
    """Make a ready welcome alert the list's welcome (creating its series), or remove it.

    A replaced alert is no longer used by a step, so it finishes once its queued mails are out.
    """
    series = series_of(session, mailing_list.id)
    if alert_id is None:
        if series is not None:
            # Its readers have had their mail; without the series they are in nothing.
            session.execute(delete(SeriesEntry).where(SeriesEntry.series_id == series.id))
            session.execute(delete(SeriesStep).where(SeriesStep.series_id == series.id))
            session.delete(series)
            session.flush()
        return None
    if series is None:
        series = Series(
            name=_name(session, mailing_list),
            list_id=mailing_list.id,
            trigger=SeriesTrigger.JOINED,
            status=SeriesStatus.ACTIVE,
            welcome=True,
            created_by_id=editor.id,
            seen_click_id=entering.last_click_id(session),
        )
        session.add(series)
        session.flush()
    step = first_step(session, series.id)
    if step is None:
        session.add(SeriesStep(series_id=series.id, position=1, alert_id=alert_id,
                               delay_seconds=0))  # fmt: skip
    else:
        step.alert_id = alert_id
    session.flush()
    return series
