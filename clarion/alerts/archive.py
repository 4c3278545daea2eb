"""The public archive of sent alerts (only those marked public), and its RSS feed."""

from __future__ import annotations

from email.utils import format_datetime
from xml.etree import ElementTree as ET

from sqlalchemy import select
from sqlalchemy.orm import Session

from clarion import i18n
from clarion.alerts import identity
from clarion.alerts.campaigns import render_preview
from clarion.alerts.rendering import RenderedMail
from clarion.config import get_settings
from clarion.errors import NotFound
from clarion.i18n import gettext as _
from clarion.models import Alert, AlertStatus
from clarion.paging import Page, keyset_page

FEED_ITEMS = 20


def _public():
    return select(Alert).where(Alert.status == AlertStatus.SENT, Alert.archive_public)


def page(session: Session, after: int | None = None, before: int | None = None) -> Page[Alert]:
    """Public sent alerts, newest first."""
    return keyset_page(session, _public(), Alert.id, lambda a: a.id, after=after, before=before)


def get_public(session: Session, uid: str) -> Alert:
    """A public sent alert by its random uid; NotFound for anything else (drafts included)."""
    alert = session.scalar(_public().where(Alert.uid == uid))
    if alert is None:
        raise NotFound(_("There is no such alert in the archive."))
    return alert


def rendered(session: Session, alert: Alert) -> RenderedMail:
    """The alert as readers saw it, with recipient values that identify nobody."""
    return render_preview(session, alert)


def sent_on(alert: Alert):
    """When the alert went out (for lists and the feed)."""
    return alert.finished_at or alert.started_at or alert.updated_at


def feed(session: Session) -> bytes:
    """RSS 2.0 of the newest public alerts, each with its HTML."""
    settings = get_settings()
    name = identity.load(session).name
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = _("%(site)s: archive", site=name)
    ET.SubElement(channel, "link").text = f"{settings.base_url}/archive"
    ET.SubElement(channel, "description").text = _("Alerts sent by %(site)s", site=name)
    ET.SubElement(channel, "language").text = i18n.current()
    alerts = session.scalars(_public().order_by(Alert.id.desc()).limit(FEED_ITEMS))
    for alert in alerts:
        link = f"{settings.base_url}/archive/{alert.uid}"
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = alert.subject
        ET.SubElement(item, "link").text = link
        ET.SubElement(item, "guid", isPermaLink="true").text = link
        ET.SubElement(item, "pubDate").text = format_datetime(sent_on(alert))
        ET.SubElement(item, "description").text = rendered(session, alert).html
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)
