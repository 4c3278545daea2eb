"""Small helpers shared by tests."""

from __future__ import annotations

import re
import time

from clarion.models import Subscriber


def refresh(session) -> None:
    """End the session's read snapshot and forget loaded objects: see what others committed."""
    session.commit()
    session.expire_all()


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def subscription_states(session, email: str) -> dict[str, str]:
    """slug -> status for one address, read fresh from the database."""
    refresh(session)
    reader = session.query(Subscriber).filter_by(email=email).one_or_none()
    if reader is None:
        return {}
    return {s.mailing_list.slug: s.status.value for s in reader.subscriptions}


def tiny_png(size: tuple[int, int] = (2, 2), mode: str = "RGB") -> bytes:
    """A real PNG image of the given size (media checks the header of what it stores)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def paragraphs(html: str) -> list[str]:
    """The whole text of each <p> of a page, spaces collapsed: a sentence checked word for word."""
    from html.parser import HTMLParser

    class _Paragraphs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []
            self.depth = 0

        def handle_starttag(self, tag, attrs):
            if tag == "p":
                self.depth += 1
                self.found.append("")

        def handle_endtag(self, tag):
            if tag == "p" and self.depth:
                self.depth -= 1

        def handle_data(self, data):
            if self.depth:
                self.found[-1] += data

    parser = _Paragraphs()
    parser.feed(html)
    return [" ".join(text.split()) for text in parser.found]


def poll_json(client, url: str, done: str, timeout: float) -> dict:
    """The JSON an admin page polls at `url`, once its `done` key is true (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(url, headers={"Accept": "application/json"}).get_json()
        if body[done] or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def wait_for_job(client, uid: str, timeout: float = 30) -> dict:
    """A job's progress as the admin's page polls it, once it finished (or at the timeout)."""
    return poll_json(client, f"/admin/jobs/{uid}/progress", "finished", timeout)


def wait_until(predicate, timeout: float = 60.0, every: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def sign_up(session, list_id: int, email: str) -> int:
    """A sign-up committed as the form makes it, its task not published; the consent's id."""
    from clarion.audience import subscribers

    outcome = subscribers.subscribe(
        session, subscribers.SubscribeRequest(email, [list_id], name="Ola")
    )
    session.commit()
    assert outcome.consent_id is not None
    return outcome.consent_id
