"""Email templates: sandboxed Jinja over templates/email/<name>/, MJML compiled to HTML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mjml
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clarion import i18n
from clarion.alerts import mjml_check, personal
from clarion.alerts.remote import remote_assets
from clarion.config import PROJECT_ROOT
from clarion.errors import ValidationError

EMAIL_TEMPLATES = PROJECT_ROOT / "templates" / "email"
# Marks around what the freeze must not track (`| untracked` in a layout): text a reader is
# asked to copy, so nobody publishes their own tracked link, and the privacy policy's link.
# Letters only, like the freeze's sentinels: MJML writes private-use code points in attribute
# values as "\u{e002}", and autoescaping, MJML and Markdown leave letters as they are.
UNTRACKED_OPEN = "zqUntrackedOpenq"
UNTRACKED_CLOSE = "zqUntrackedCloseq"
# MJML hides <mj-preview> with white 1 px text, which SpamAssassin scores as a hidden-text
# trick (HTML_FONT_LOW_CONTRAST); the usual hidden block does not need it.
_PREVIEW_RE = re.compile(r'(<body[^>]*>)<div style="display:none;[^"]*">')
PREVIEW_STYLE = "display:none;max-height:0;overflow:hidden;mso-hide:all"
_MJML_TAG_RE = re.compile(r"<mjml\b(?![^>]*\blang=)", re.I)


@dataclass(frozen=True)
class RenderedMail:
    """Subject, HTML and plain text of one mail, ready to be put into MIME, and its language."""

    subject: str
    html: str
    text: str
    language: str = i18n.SOURCE_LANGUAGE


@lru_cache(maxsize=16)
def email_environment(
    root: Path = EMAIL_TEMPLATES, lang: str = i18n.SOURCE_LANGUAGE
) -> ImmutableSandboxedEnvironment:
    """A sandbox in one language: layouts may not reach Python internals, whatever they say."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        autoescape=select_autoescape(enabled_extensions=("mjml", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.globals["number"] = lambda n: i18n.format_number(n, lang)
    env.filters["untracked"] = untracked
    return env


def untracked(value: Any) -> str:
    """Text a reader is asked to copy: its links are left as written, never tracked."""
    return f"{UNTRACKED_OPEN}{value}{UNTRACKED_CLOSE}"


def strip_untracked(text: str) -> str:
    """Text without the marks of `untracked`."""
    return text.replace(UNTRACKED_OPEN, "").replace(UNTRACKED_CLOSE, "")


def compile_mjml(source: str, where: str = "layout", *, strict: bool = False) -> str:
    """MJML to HTML, with web fonts switched off so no mail ever loads a third-party asset.

    A structural check runs first, so that errors name the element and the line;
    `strict` (custom layouts) also forbids <mj-include> and <mj-font>.
    """
    problem = mjml_check.check(source, strict=strict)
    if problem is not None:
        raise ValidationError({where: i18n.admin_gettext("MJML error on %(at)s", at=problem)})
    try:
        html = mjml.mjml2html(source, fonts={}, disable_comments=True)
    except ValueError as exc:
        problem = i18n.admin_gettext("The MJML layout does not compile: %(error)s", error=exc)
        raise ValidationError({where: problem}) from None
    return _PREVIEW_RE.sub(rf'\1<div style="{PREVIEW_STYLE}">', html, count=1)


def template_error_line(exc: BaseException, template_name: str | None = None) -> int | None:
    """The template line a Jinja error happened on (syntax errors carry it; others in traces)."""
    line = getattr(exc, "lineno", None)
    if line:
        return int(line)
    wanted = template_name or "<template>"
    tb = exc.__traceback__
    found = None
    while tb is not None:
        # Jinja rewrites tracebacks so that template frames carry the template's own lines.
        if tb.tb_frame.f_code.co_filename == wanted:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def check_no_remote_assets(html: str, base_url: str, where: str = "layout") -> None:
    """Refuse HTML that would make the reader's mail client fetch something from elsewhere."""
    found = remote_assets(html, base_url)
    if found:
        raise ValidationError(
            {
                where: i18n.admin_gettext(
                    "The mail would load %(asset)s from another server when opened; "
                    "use images stored by Clarion, or none.",
                    asset=found[0],
                )
            }
        )


def with_language(mjml_source: str, lang: str) -> str:
    """A layout that does not say its language says the alert's (`<mjml lang>`)."""
    return _MJML_TAG_RE.sub(f'<mjml lang="{lang}"', mjml_source, count=1)


def render_template_file(
    name: str, context: dict[str, Any], lang: str | None = None, site: SiteContext | None = None
) -> RenderedMail:
    """Render templates/email/<name>/{subject.txt, body.mjml, body.txt} in `lang`, with the
    campaign's identity from `site` (name, logo, accent, footer)."""
    lang = i18n.resolve(lang)
    # Without a site (tests, tools) the mail has the default accent and no logo or footer line.
    site = site or SiteContext(str(context.get("site_name", "")), "")
    context = {**site.layout_values(), **context}
    env = email_environment(EMAIL_TEMPLATES, lang)
    try:
        subject = env.get_template(f"{name}/subject.txt").render(context).strip()
        mjml_source = env.get_template(f"{name}/body.mjml").render(context)
        text = env.get_template(f"{name}/body.txt").render(context)
    except TemplateError as exc:
        raise ValidationError({f"templates/email/{name}": str(exc)}) from None
    html = compile_mjml(mjml_source, where=f"templates/email/{name}/body.mjml")
    # Notices are never tracked: the marks of `untracked` in shared partials just go.
    html, text = strip_untracked(html), strip_untracked(text)
    return RenderedMail(subject=" ".join(subject.split()), html=html, text=text, language=lang)


RECIPIENT_FIELDS = ("greeting", "unsubscribe_url", "preferences_url")


@dataclass(frozen=True)
class AlertContent:
    """What an editor wrote: the kind, subject, preheader and the kind's fields."""

    kind: str
    subject: str
    fields: dict[str, Any]
    preheader: str = ""


@dataclass(frozen=True)
class SiteContext:
    """Who sends: the campaign's identity (see `identity`), the installation's address and the
    sending list's name."""

    site_name: str
    base_url: str
    list_name: str = ""
    accent: str = "#b3261e"
    logo_url: str = ""
    blog_url: str = ""
    privacy_url: str = ""
    postal: str = ""

    def layout_values(self) -> dict[str, str]:
        """What every mail layout may show of the campaign."""
        return {
            "site_name": self.site_name,
            "base_url": self.base_url,
            "accent": self.accent,
            "logo_url": self.logo_url,
            "blog_url": self.blog_url,
            "privacy_url": self.privacy_url,
            "postal": self.postal,
        }


def render_alert(
    content: AlertContent,
    recipient: dict[str, str],
    site: SiteContext,
    layout_mjml: str | None = None,
    lang: str | None = None,
    *,
    keep_untracked: bool = False,
    reader: Mapping[str, str] | None = None,
    swaps: personal.Swaps | None = None,
) -> RenderedMail:
    """Render an alert for one recipient (or, at freeze time, for placeholder values) in `lang`.

    `recipient` holds exactly RECIPIENT_FIELDS as opaque strings; layouts insert them but never
    branch on them, so that one rendering with placeholders serves every recipient.
    `layout_mjml` replaces the kind's body.mjml (a custom layout, also sandboxed).
    `keep_untracked` leaves the marks of `untracked` in the text and HTML, for the freeze.
    Personalisation fields (clarion.alerts.personal) show `reader`'s values, or their
    fallbacks; given `swaps` (the freeze), their sentinels stay for the caller to mark.
    """
    from clarion.alerts.kinds import layout_context

    missing = set(RECIPIENT_FIELDS) - set(recipient)
    if missing:
        raise ValueError(f"recipient fields missing: {sorted(missing)}")
    lang = i18n.resolve(lang)
    fill = swaps is None
    swaps = swaps or personal.Swaps()
    content = _swap_fields(content, swaps)
    context = {
        **layout_context(content.kind, content.fields, site.base_url, lang, site.accent),
        "subject": content.subject,
        "preheader": content.preheader,
        **site.layout_values(),
        "list_name": site.list_name,
        "recipient": dict(recipient),
    }
    env = email_environment(EMAIL_TEMPLATES, lang)
    kind = str(content.kind)
    try:
        subject = env.get_template(f"{kind}/subject.txt").render(context)
        layout = (
            env.from_string(layout_mjml) if layout_mjml else env.get_template(f"{kind}/body.mjml")
        )
        mjml_source = with_language(layout.render(context), lang)
        text = env.get_template(f"{kind}/body.txt").render(context)
    except TemplateError as exc:
        where = "layout" if layout_mjml else f"templates/email/{kind}"
        line = template_error_line(exc)
        problem = (
            i18n.admin_gettext("Template error on line %(line)s: %(error)s", line=line, error=exc)
            if line
            else i18n.admin_gettext("Template error: %(error)s", error=exc)
        )
        raise ValidationError({where: problem}) from None
    html = compile_mjml(
        mjml_source,
        where="layout" if layout_mjml else f"templates/email/{kind}/body.mjml",
        strict=bool(layout_mjml),
    )
    check_no_remote_assets(html, site.base_url)
    swaps.check_not_in_links(html)
    if not keep_untracked:
        html, text = strip_untracked(html), strip_untracked(text)
    subject = " ".join(subject.split())
    if fill:
        values = {**personal.language_values(lang), **(reader or {})}
        subject = swaps.fill(subject, values, escape=False)
        html = swaps.fill(html, values, escape=True)
        text = swaps.fill(text, values, escape=False)
    return RenderedMail(subject=subject, html=html, text=text, language=lang)


def _swap_fields(content: AlertContent, swaps: personal.Swaps) -> AlertContent:
    """The content with the personalisation fields of its subject, preview text and Markdown
    fields swapped for sentinels (other fields show what was typed, as typed)."""
    from clarion.alerts.kinds import spec

    markdown = {f.name for f in spec(content.kind).fields if f.type == "markdown"}
    fields = {
        k: swaps.swap_in(str(v), k) if k in markdown and v else v
        for k, v in content.fields.items()
    }
    return AlertContent(
        kind=content.kind,
        subject=swaps.swap_in(content.subject, "subject"),
        fields=fields,
        preheader=swaps.swap_in(content.preheader, "preheader"),
    )
