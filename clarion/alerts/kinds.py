"""The four alert kinds: their fields, validation, and the context their layouts render with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clarion import i18n
from clarion.alerts import markup, media, xcount
from clarion.config import get_settings
from clarion.errors import ValidationError
from clarion.models import AlertKind
from clarion.tokens import STAY_PATH

HASHTAG_RE = re.compile(r"#[^\s#.,;:!?\"'()\[\]{}<>]{1,100}")


@dataclass(frozen=True)
class FieldSpec:
    """One field of an alert form: how it is labelled, checked and stored."""

    name: str
    label: str
    type: str  # text, textarea, url, markdown, hashtags, date, time, timezone, post, petition
    required: bool = False
    max_length: int = 300
    help: str = ""
    default: str = ""


@dataclass(frozen=True)
class KindSpec:
    """A kind of alert: its label and its fields, in form order."""

    kind: AlertKind
    label: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


KINDS: dict[AlertKind, KindSpec] = {
    AlertKind.NEW_POST: KindSpec(
        AlertKind.NEW_POST,
        i18n.NA_("New blog post"),
        (
            FieldSpec("post_url", i18n.NA_("Post URL"), "url", required=True, max_length=1000),
            FieldSpec("title", i18n.NA_("Title"), "text", required=True),
            FieldSpec("excerpt", i18n.NA_("Excerpt"), "textarea", max_length=2000),
            FieldSpec(
                "image_url",
                i18n.NA_("Image URL"),
                "url",
                max_length=1000,
                help=i18n.NA_(
                    "Copied to Clarion when saved, so that mail never loads it from elsewhere."
                ),
            ),
            FieldSpec(
                "cta_text",
                i18n.NA_("Button text"),
                "text",
                max_length=60,
                default=i18n.N_("Read the post"),
            ),
        ),
    ),
    AlertKind.PETITION: KindSpec(
        AlertKind.PETITION,
        i18n.NA_("Petition"),
        (
            FieldSpec(
                "petition_id",
                i18n.NA_("Petition"),
                "petition",
                max_length=20,
                help=i18n.NA_(
                    "Its address, title, target and image fill the fields below when they are "
                    "empty; the mail shows its count and goal as they are when it is sent."
                ),
            ),
            FieldSpec(
                "petition_url", i18n.NA_("Petition URL"), "url", required=True, max_length=1000
            ),
            FieldSpec("petition_title", i18n.NA_("Petition title"), "text", required=True),
            FieldSpec(
                "target",
                i18n.NA_("Addressed to"),
                "text",
                help=i18n.NA_("Whom the petition asks to act."),
            ),
            FieldSpec(
                "image_url",
                i18n.NA_("Image URL"),
                "url",
                max_length=1000,
                help=i18n.NA_(
                    "Copied to Clarion when saved, so that mail never loads it from elsewhere."
                ),
            ),
            FieldSpec(
                "image_alt",
                i18n.NA_("What the image shows"),
                "text",
                help=i18n.NA_("For readers who cannot see it; empty if it is only decoration."),
            ),
            FieldSpec(
                "why", i18n.NA_("Why it matters"), "markdown", required=True, max_length=20000
            ),
            FieldSpec(
                "ask",
                i18n.NA_("The ask (button text)"),
                "text",
                max_length=60,
                default=i18n.N_("Sign the petition"),
            ),
        ),
    ),
    AlertKind.HASHTAG_DAY: KindSpec(
        AlertKind.HASHTAG_DAY,
        i18n.NA_("Hashtag day"),
        (
            FieldSpec(
                "hashtags", i18n.NA_("Hashtag(s)"), "hashtags", required=True, max_length=200
            ),
            FieldSpec("action_date", i18n.NA_("Date of the action"), "date", required=True),
            FieldSpec("action_time", i18n.NA_("Time of the action"), "time", required=True),
            FieldSpec(
                "action_timezone",
                i18n.NA_("Time zone of the action"),
                "timezone",
                required=True,
                default="UTC",
            ),
            FieldSpec("intro", i18n.NA_("What the day is about"), "markdown", max_length=20000),
            FieldSpec("share_url", i18n.NA_("Link to share"), "url", max_length=1000),
            FieldSpec(
                "suggested_post",
                i18n.NA_("Suggested post"),
                "post",
                required=True,
                max_length=1000,
                help=i18n.NA_("Counted as X counts it, with the link and hashtags; 280 at most."),
            ),
        ),
    ),
    AlertKind.NEWSLETTER: KindSpec(
        AlertKind.NEWSLETTER,
        i18n.NA_("Newsletter"),
        (
            FieldSpec(
                "body_md", i18n.NA_("Body (Markdown)"), "markdown", required=True, max_length=200000
            ),
        ),
    ),
}


def spec(kind: AlertKind | str) -> KindSpec:
    """The spec of a kind; ValidationError for an unknown kind."""
    try:
        return KINDS[AlertKind(kind)]
    except ValueError:
        choices = ", ".join(k.value for k in AlertKind)
        problem = i18n.admin_gettext("Choose one of: %(choices)s.", choices=choices)
        raise ValidationError({"kind": problem}) from None


def _check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return i18n.admin_gettext("Enter a full web address starting with https://")
    return None


def _check_value(field: FieldSpec, value: str) -> str | None:
    if len(value) > field.max_length:
        return i18n.admin_gettext(
            "Keep this under %(limit)s characters (now %(now)s).",
            limit=field.max_length,
            now=len(value),
        )
    checks = {
        "petition": _check_petition_id,
        "url": _check_url,
        "hashtags": _check_hashtags,
        "date": _check_date,
        "time": _check_time,
        "timezone": _check_zone,
    }
    check = checks.get(field.type)
    return check(value) if check else None


def _check_petition_id(value: str) -> str | None:
    return None if value.isdigit() else i18n.admin_gettext("Choose a petition from the list.")


def _check_hashtags(value: str) -> str | None:
    if all(HASHTAG_RE.fullmatch(tag) for tag in value.split()):
        return None
    return i18n.admin_gettext("Write hashtags like #FreeThemAll, separated by spaces.")


def _check_date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return i18n.admin_gettext("Write the date as YYYY-MM-DD.")
    return None


def _check_time(value: str) -> str | None:
    try:
        time.fromisoformat(value)
    except ValueError:
        return i18n.admin_gettext("Write the time as HH:MM (24-hour clock).")
    return None


def _check_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return i18n.admin_gettext("Choose a time zone such as Europe/Minsk.")
    return None


def validate_fields(
    kind: AlertKind | str, raw: Mapping[str, Any], require: bool = True
) -> dict[str, str]:
    """The kind's fields, trimmed and checked; ValidationError names every bad field.

    `require=False` (a version still being written) lets required fields be empty.
    """
    kind_spec = spec(kind)
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in kind_spec.fields:
        value = str(raw.get(field.name) or "").strip()
        if not value:
            if field.required and require:
                errors[field.name] = i18n.admin_gettext(
                    "%(field)s is required.", field=i18n.admin_gettext(field.label)
                )
            continue
        problem = _check_value(field, value)
        if problem:
            errors[field.name] = problem
        cleaned[field.name] = value
    if kind_spec.kind == AlertKind.HASHTAG_DAY and "suggested_post" in cleaned:
        length = xcount.weighted_length(suggested_post_text(cleaned))
        if length > xcount.MAX_WEIGHTED_LENGTH:
            errors["suggested_post"] = i18n.admin_gettext(
                "The post is %(length)s characters as X counts them, with the link and hashtags; "
                "shorten it to %(max)s.",
                length=length,
                max=xcount.MAX_WEIGHTED_LENGTH,
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


def suggested_post_text(fields: Mapping[str, str]) -> str:
    """The post readers are asked to share: the text, then missing hashtags, then the link."""
    text = fields.get("suggested_post", "").strip()
    missing = [t for t in fields.get("hashtags", "").split() if t.lower() not in text.lower()]
    parts = [text, *missing]
    if fields.get("share_url") and fields["share_url"] not in text:
        parts.append(fields["share_url"])
    return " ".join(p for p in parts if p)


def share_links(text: str, url: str, base_url: str) -> dict[str, str]:
    """Intent URLs for X, Bluesky, Mastodon (via our own page), Facebook and Telegram."""
    links = {
        "x": "https://x.com/intent/post?" + urlencode({"text": text}, quote_via=quote),
        "bluesky": "https://bsky.app/intent/compose?" + urlencode({"text": text}, quote_via=quote),
        # Mastodon has no central service: our page asks for the reader's own server.
        "mastodon": f"{base_url}/share/mastodon?" + urlencode({"text": text}, quote_via=quote),
        "telegram": "https://t.me/share/url?"
        + urlencode({"url": url or "", "text": text}, quote_via=quote),
    }
    # Facebook shares only a link: without one there is no Facebook button (an empty value,
    # so that layouts can test it under StrictUndefined).
    links["facebook"] = (
        "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": url}) if url else ""
    )
    return links


def share_targets(base_url: str) -> tuple[str, ...]:
    """The address of each share intent (the part before "?") that share_links points at."""
    sample = share_links("text", "https://example.org/", base_url)
    return tuple(url.split("?", 1)[0] + "?" for url in sample.values() if url)


def is_share_link(url: str, base_url: str) -> bool:
    """True when `url` asks a reader's network to post something: one of the share intents."""
    return url.startswith(share_targets(base_url))


def action_moment(fields: Mapping[str, str]) -> datetime | None:
    """When a hashtag day's action happens, as an aware datetime in its own zone."""
    try:
        day = date.fromisoformat(fields["action_date"])
        at = time.fromisoformat(fields["action_time"])
        zone = ZoneInfo(fields.get("action_timezone") or "UTC")
    except (KeyError, ValueError, ZoneInfoNotFoundError):
        return None
    return datetime.combine(day, at, tzinfo=zone)


def _default(field: FieldSpec, lang: str) -> str:
    # Button texts are words for the reader; a time zone default ("UTC") is not.
    if field.default and field.type == "text":
        return i18n.gettext(field.default, lang)
    return field.default


def _stored_widths(base_url: str) -> markup.WidthOf:
    def width_of(url: str) -> int | None:
        return media.stored_width(url, base_url, get_settings().instance_dir)

    return width_of


# Set at freeze (and preview) time from the picked petition: never typed, never stored.
PROGRESS_FIELDS = ("petition_count", "petition_goal")
# Set at freeze (and preview) time on a "stay subscribed?" newsletter: its button's address.
STAY_FIELD = "stay_url"


def stay_fields(stay_days: int | None, base_url: str) -> dict[str, str]:
    """The field that gives a "stay subscribed?" newsletter its "Yes, keep me" button."""
    return {STAY_FIELD: base_url + STAY_PATH} if stay_days is not None else {}


def petition_progress(fields: Mapping[str, Any]) -> dict[str, int] | None:
    """The count, goal and filled percentage a petition alert's bar shows (None: no goal known,
    as for alerts written by hand)."""
    try:
        count, goal = (int(fields[name]) for name in PROGRESS_FIELDS)
    except (KeyError, TypeError, ValueError):
        return None
    if goal <= 0:
        return None
    return {"count": count, "goal": goal, "percent": max(0, min(100, count * 100 // goal))}


def layout_context(
    kind: AlertKind | str,
    fields: Mapping[str, str],
    base_url: str,
    lang: str | None = None,
    accent: str = markup.DEFAULT_BUTTON,
) -> dict[str, Any]:
    """What a kind's layout renders with: the fields, defaults filled (in `lang`), Markdown
    made safe, the action's moment in `lang`'s words."""
    kind_spec = spec(kind)
    lang = i18n.resolve(lang)
    context: dict[str, Any] = {
        f.name: fields.get(f.name) or _default(f, lang) for f in kind_spec.fields
    }
    for field in kind_spec.fields:
        if field.type == "markdown":
            context[f"{field.name}_html"] = markup.markdown_to_html(
                context[field.name], base_url, _stored_widths(base_url), accent
            )
            context[f"{field.name}_text"] = markup.markdown_to_text(context[field.name])
    if kind_spec.kind == AlertKind.PETITION:
        context["progress"] = petition_progress(fields)
    if kind_spec.kind == AlertKind.NEWSLETTER:
        # A "stay subscribed?" mail's button (STAY_FIELD, set at freeze and preview time).
        context[STAY_FIELD] = fields.get(STAY_FIELD) or ""
    if kind_spec.kind in (AlertKind.NEW_POST, AlertKind.PETITION):
        # A picture narrower than the column keeps its size instead of being stretched.
        image = context.get("image_url") or ""
        context["image_width"] = (_stored_widths(base_url)(image) if image else None) or 0
    if kind_spec.kind == AlertKind.HASHTAG_DAY:
        post = suggested_post_text(fields)
        context["post_text"] = post
        context["share"] = share_links(post, fields.get("share_url", ""), base_url)
        moment = action_moment(fields)
        context["action_when"] = i18n.format_moment(moment, lang) if moment else ""
        context["hashtag_list"] = fields.get("hashtags", "").split()
    return context
