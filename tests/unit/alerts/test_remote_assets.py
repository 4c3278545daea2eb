"""The "nothing remote in mail" check parses HTML: every URL-bearing attribute and CSS."""

from __future__ import annotations

import pytest

from clarion.alerts.remote import remote_assets

BASE = "https://alerts.example.org"
OWN = f"{BASE}/media/0123456789abcdef0123456789abcdef.png"


@pytest.mark.parametrize(
    "html",
    [
        '<link rel="stylesheet" href="https://evil.example/x.css">',
        f'<img src="{OWN}" srcset="{OWN} 1x, https://evil.example/p.png 2x">',
        '<img src="&#104;ttps://evil.example/p.png">',
        '<img src="&#x68;&#x74;&#x74;&#x70;&#x73;&#x3a;//evil.example/p.png">',
        '<img src="https&colon;//evil.example/p.png">',
        '<object data="https://evil.example/o.svg"></object>',
        '<video poster="//evil.example/v.png"></video>',
        '<table background="https://evil.example/bg.png"></table>',
        '<div style="background: u\\72l(https://evil.example/bg.png)"></div>',
        "<div style=\"background-image:url( 'https://evil.example/bg.png' )\"></div>",
        "<style>@import 'https://evil.example/a.css';</style>",
        "<style>p{background:url(/* x */https://evil.example/b.png)}</style>",
        '<svg><image xlink:href="https://evil.example/i.png"/></svg>',
        '<svg><image href="https://evil.example/i.png"/></svg>',
        '<meta http-equiv="refresh" content="0; url=https://evil.example/">',
        '<base href="https://evil.example/"><img src="x.png">',
        '<embed src="https://evil.example/e.swf">',
        '<input type="image" src="https://evil.example/i.png">',
        '<img src="\\\\evil.example/p.png">',
        '<img src=" https://evil.example/p.png">',
        '<img src="https://alerts.example.org.evil.example/p.png">',
        '<picture><source srcset="https://evil.example/a.webp"></picture>',
        '<IMG SRC="HTTPS://evil.example/p.png">',
    ],
)
def test_each_way_of_loading_something_remote_is_found(html):
    assert remote_assets(html, BASE), html


@pytest.mark.parametrize(
    "html",
    [
        f'<img src="{OWN}" srcset="{OWN} 1x, {OWN} 2x">',
        '<a href="https://blog.example.org/letter">read</a>',
        '<area href="https://blog.example.org/">',
        '<img src="data:image/png;base64,AAAA">',
        '<img src="cid:logo@clarion">',
        '<p style="color: red">x</p><style>p{color:#333}</style>',
        f'<div style="background:url({OWN})"></div>',
        '<html xmlns:v="urn:schemas-microsoft-com:vml"><meta http-equiv="X-UA-Compatible"></html>',
    ],
)
def test_own_assets_links_and_inline_data_pass(html):
    assert remote_assets(html, BASE) == []
