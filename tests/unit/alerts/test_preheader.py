"""The preheader is hidden without the white-on-white text spam filters score."""

from __future__ import annotations

import re

from clarion.alerts.rendering import compile_mjml

SOURCE = """<mjml lang="be"><mj-head><mj-preview>Тысяча дзён за кратамі</mj-preview></mj-head>
<mj-body background-color="#f4f5f7"><mj-section background-color="#ffffff"><mj-column>
<mj-text color="#1f2933">Вітаем</mj-text></mj-column></mj-section></mj-body></mjml>"""


def test_the_preheader_is_hidden_without_a_colour_like_its_background():
    html = compile_mjml(SOURCE)
    [style] = re.findall(r'<div (style="[^"]*")>Тысяча дзён за кратамі</div>', html)
    # MJML writes color:#ffffff at font-size 1px: SpamAssassin's HTML_FONT_LOW_CONTRAST (+0.7).
    assert "color" not in style and "display:none" in style
