"""Email templates: sandboxed Jinja over templates/email/<name>/, MJML compiled to HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mjml
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clarion.config import PROJECT_ROOT
from clarion.errors import ValidationError

EMAIL_TEMPLATES = PROJECT_ROOT / "templates" / "email"
_EXTERNAL_ASSET = re.compile(r"""(?:src|background)\s*=\s*["']?(?:https?:)?//""", re.I)
_CSS_IMPORT = re.compile(r"@import|url\(\s*['\"]?(?:https?:)?//", re.I)


@dataclass(frozen=True)
class RenderedMail:
    """Subject, HTML and plain text of one mail, ready to be put into MIME."""

    subject: str
    html: str
    text: str


@lru_cache(maxsize=4)
def email_environment(root: Path = EMAIL_TEMPLATES) -> ImmutableSandboxedEnvironment:
    """A sandbox: layouts may not reach Python internals, whatever a template says."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        autoescape=select_autoescape(enabled_extensions=("mjml", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def compile_mjml(source: str, where: str = "layout") -> str:
    """MJML to HTML, with web fonts switched off so no mail ever loads a third-party asset."""
    try:
        html = mjml.mjml2html(source, fonts={}, disable_comments=True)
    except ValueError as exc:
        raise ValidationError({where: f"The MJML layout does not compile: {exc}"}) from None
    return html


def check_no_remote_assets(html: str, where: str = "layout") -> None:
    """Refuse HTML that would make the reader's mail client fetch something from elsewhere."""
    if _EXTERNAL_ASSET.search(html) or _CSS_IMPORT.search(html):
        raise ValidationError(
            {
                where: "The mail would load an image or style from another server; "
                "use images served by Clarion (uploaded) or none."
            }
        )


def render_template_file(name: str, context: dict[str, Any]) -> RenderedMail:
    """Render templates/email/<name>/{subject.txt, body.mjml, body.txt} with `context`."""
    env = email_environment()
    try:
        subject = env.get_template(f"{name}/subject.txt").render(context).strip()
        mjml_source = env.get_template(f"{name}/body.mjml").render(context)
        text = env.get_template(f"{name}/body.txt").render(context)
    except TemplateError as exc:
        raise ValidationError({f"templates/email/{name}": str(exc)}) from None
    html = compile_mjml(mjml_source, where=f"templates/email/{name}/body.mjml")
    return RenderedMail(subject=" ".join(subject.split()), html=html, text=text)
