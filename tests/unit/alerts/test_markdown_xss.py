"""Markdown from editors comes out inert: no script, no javascript: or data: URL, no handler."""

from __future__ import annotations

import re

import pytest

from clarion.alerts.markup import markdown_to_html
from clarion.alerts.rendering import AlertContent, SiteContext, render_alert

BASE = "https://alerts.example.org"
ATTACKS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<a href="javascript:alert(1)">x</a>',
    '<img src="x" onerror="alert(1)">',
    '<p onclick="alert(1)" style="background:url(javascript:alert(1))">x</p>',
    '<svg onload="alert(1)"><circle r="5"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<form action="https://evil.example"><input name=a></form>',
    '<a href="https://ok.example" onmouseover="alert(1)">ok</a>',
    "<details open ontoggle=alert(1)>",
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    "<style>body{background:url(https://evil.example/t.png)}</style>",
]
DANGEROUS = re.compile(
    r"<\s*(script|svg|iframe|object|embed|form|input|style|base|meta|math|details)\b"
    r"|\bon[a-z]+\s*="
    r"|javascript:|data:|evil\.example",
    re.I,
)


@pytest.mark.parametrize("attack", ATTACKS)
def test_markdown_attack_is_inert(attack):
    html = markdown_to_html(f"Before\n\n{attack}\n\nAfter", BASE)
    assert not DANGEROUS.search(html), html


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_inert_in_a_rendered_newsletter(attack):
    site = SiteContext("Free", BASE)
    recipient = {
        "greeting": "Hello,",
        "unsubscribe_url": f"{BASE}/u",
        "preferences_url": f"{BASE}/p",
    }
    mail = render_alert(AlertContent("newsletter", "S", {"body_md": attack}), recipient, site)
    body = mail.html.split("<body", 1)[1]
    assert not DANGEROUS.search(body), body


def test_safe_markup_survives():
    html = markdown_to_html(
        "**bold** [link](https://ok.example/a) ![i](" + BASE + "/media/x.png)", BASE
    )
    assert "<strong>bold</strong>" in html
    assert 'href="https://ok.example/a"' in html and 'rel="noopener noreferrer"' in html
    assert f'src="{BASE}/media/x.png"' in html
