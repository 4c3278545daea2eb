"""MJML mistakes are reported with what is wrong and the line, before mjml-python sees them."""

from __future__ import annotations

import pytest

from clarion.alerts.mjml_check import check
from clarion.alerts.rendering import compile_mjml
from clarion.errors import ValidationError

GOOD = """<mjml>
  <mj-head><mj-title>T</mj-title><mj-attributes><mj-text padding="0" /></mj-attributes></mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello <b>there</b><br></mj-text>
        <mj-button href="https://a.example">Go</mj-button>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""


def test_good_layout_passes():
    assert check(GOOD, strict=True) is None
    assert "Hello" in compile_mjml(GOOD)


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("<mjml>\n<mj-body>\n<mj-section>\n<mj-text>x</mj-text>", 4, "must be inside <mj-column>"),
        ("<mjml>\n<mj-body>\n<mj-bogus/>\n</mj-body></mjml>", 3, "unknown element <mj-bogus>"),
        (
            "<mjml><mj-body>\n<mj-section>\n<mj-column>\n</mj-section>\n</mj-body></mjml>",
            4,
            "</mj-section> closes <mj-column> opened on line 3",
        ),
        ("<mjml><mj-body>\n<mj-section>\n", 2, "<mj-section> is never closed"),
        ("<mjml><mj-body><mj-section><mj-column>\n<mj-text>open", 2, "<mj-text> is never closed"),
        ("<mj-body></mj-body>", 1, "must start with <mjml>"),
        ("plain text", 1, "no <mjml> element"),
        ("<mjml><mj-body></mj-body></mjml>\n<mj-body/>", 2, "after the closing </mjml>"),
    ],
)
def test_problem_names_what_and_line(source, line, words):
    problem = check(source)
    assert problem is not None and problem.line == line and words in problem.message, problem


def test_strict_forbids_includes_and_fonts():
    assert "mj-include" in str(
        check('<mjml><mj-body><mj-include path="/etc/passwd"/></mj-body></mjml>', strict=True)
    )
    assert "web fonts" in str(
        check(
            '<mjml><mj-head><mj-font name="x" href="https://f.example/x.css"/></mj-head></mjml>',
            strict=True,
        )
    )


def test_compile_error_is_a_validation_error_with_line():
    with pytest.raises(ValidationError) as caught:
        compile_mjml("<mjml>\n<mj-body>\n<mj-bogus/>\n</mj-body></mjml>", where="layout")
    assert caught.value.errors == {"layout": "MJML error on line 3: unknown element <mj-bogus>."}
