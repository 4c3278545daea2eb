"""Open tracking: off unless an owner turns it on; a pixel per mail, opens counted as approximate.

Opens are approximate at best: many mail programs block images (no open seen), and some fetch
every image on arrival (opens that no one made). Clarion therefore never uses them for
anything but a rough figure, and by default does not track them at all.
"""

from __future__ import annotations

import base64
import re

from sqlalchemy.orm import Session

from clarion import audit, editors
from clarion.config import get_settings
from clarion.errors import NotFound
from clarion.models import AppSetting, Editor
from clarion.redisconn import get_redis
from clarion.tracking import clicks, eventstream, linkmap

SETTING = "open_tracking"
_REDIS_KEY = "clarion:setting:open_tracking"
_REDIS_TTL = 60
# A transparent 1x1 GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_BODY_END = re.compile(r"</body\s*>", re.I)


def is_enabled(session: Session) -> bool:
    """Whether an owner turned open tracking on (else the CLARION_OPEN_TRACKING default)."""
    row = session.get(AppSetting, SETTING)
    return bool(row.value) if row is not None else get_settings().open_tracking


def set_enabled(session: Session, editor: Editor, enabled: bool, ip: str | None = None) -> None:
    """Turn open tracking on or off (owners only); recorded in the audit log."""
    editors.require(editor, "manage_settings")
    row = session.get(AppSetting, SETTING)
    before = bool(row.value) if row is not None else get_settings().open_tracking
    if row is None:
        session.add(AppSetting(key=SETTING, value=enabled))
    else:
        row.value = enabled
    audit.record(session, editor, "settings.open_tracking", SETTING, ip, old=before, new=enabled)
    get_redis().delete(_REDIS_KEY)  # pixel requests see the change within _REDIS_TTL seconds


def _enabled_now() -> bool:
    cached = get_redis().get(_REDIS_KEY)
    if cached is not None:
        return cached == b"1"
    from clarion.db import session_factory

    with session_factory(reader=True)() as session:
        enabled = is_enabled(session)
    get_redis().set(_REDIS_KEY, b"1" if enabled else b"0", ex=_REDIS_TTL)
    return enabled


def pixel_url(base_url: str, delivery_token: str) -> str:
    """The address of one recipient's pixel."""
    return f"{base_url}/o/{delivery_token}.gif"


def add_pixel(html: str, url: str) -> str:
    """The HTML with a 1x1 image of `url` at the end of the body."""
    img = f'<img src="{url}" width="1" height="1" alt="" border="0">'
    matches = list(_BODY_END.finditer(html))
    if not matches:
        return html + img
    at = matches[-1].start()
    return html[:at] + img + html[at:]


def with_open_pixel(session: Session, html: str, url: str) -> str:
    """For the freeze step: the HTML with the pixel when tracking is on, else unchanged."""
    return add_pixel(html, url) if is_enabled(session) else html


def record_open(delivery_token: str) -> bool:
    """Buffer an open for a pixel request when tracking is on; never raises for bad tokens."""
    if not _enabled_now():
        return False
    try:
        delivery_id, _recognises = clicks.decode_click(delivery_token)
    except NotFound:
        return False
    alert_id = linkmap.alert_of(delivery_id)
    if alert_id is None:
        return False
    eventstream.record_open(delivery_id, alert_id)
    return True
