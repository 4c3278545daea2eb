"""`[text](address){button}` alone in a paragraph becomes a table-cell button in the accent."""

from __future__ import annotations

from clarion.alerts import markup

BASE = "https://news.example.org"


def test_a_marked_link_becomes_a_button_in_the_accent_colour():
    html = markup.markdown_to_html(
        "[Sign **now**](https://act.example.org/p?a=1&b=2){button}", BASE, accent="#0b5394"
    )
    assert '<td align="center" bgcolor="#0b5394"' in html
    assert 'href="https://act.example.org/p?a=1&amp;b=2"' in html
    assert "Sign <strong>now</strong></a></td>" in html and "{button}" not in html


def test_the_text_part_shows_the_link_and_no_mark():
    text = markup.markdown_to_text("[Sign now](https://act.example.org/p){button}")
    assert text.strip() == "Sign now (https://act.example.org/p)"


def test_a_bad_accent_or_a_link_inside_a_sentence_is_no_button():
    html = markup.markdown_to_html("[x](https://a.example){button}", BASE, accent="red;x:y")
    assert f'bgcolor="{markup.DEFAULT_BUTTON}"' in html
    inline = markup.markdown_to_html("See [x](https://a.example){button} here", BASE)
    assert "<table" not in inline


def test_a_script_link_never_becomes_a_button():
    html = markup.markdown_to_html("[x](javascript:alert(1)){button}", BASE)
    assert "javascript" not in html
