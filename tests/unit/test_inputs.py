"""Untrusted text made safe: header values, spreadsheet cells, whole numbers in ASCII digits."""

from __future__ import annotations

import pytest

from clarion.errors import ValidationError
from clarion.inputs import MAX_ID, csv_cell, has_control_chars, header_text, whole_number


@pytest.mark.parametrize("value", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\nx"])
def test_export_cells_are_never_formulas(value):
    assert csv_cell(value) == "'" + value


def test_ordinary_cells_are_kept():
    assert csv_cell("Ana") == "Ana" and csv_cell(None) == "" and csv_cell(3) == "3"


def test_header_text_turns_every_control_character_into_one_space():
    assert header_text("Lst\r\nX-Injected: yes") == "Lst X-Injected: yes"
    assert header_text("a\x00b\x85c\td") == "a b c d"
    assert header_text("Žinios: naujienos") == "Žinios: naujienos"
    assert has_control_chars("a\u2028b") is False and has_control_chars("a\x7fb")


@pytest.mark.parametrize(
    "raw", ["²", "٣", "1²", "-1", "+1", " ", "", "1e3", "0x10", str(MAX_ID + 1)]
)
def test_whole_numbers_are_ascii_digits_within_bounds(raw):
    with pytest.raises(ValidationError) as caught:
        whole_number(raw, "after")
    assert "whole number" in caught.value.errors["after"]


def test_whole_number_bounds_and_value():
    assert whole_number(" 42 ", "n") == 42 and whole_number(str(MAX_ID), "n") == MAX_ID
    with pytest.raises(ValidationError):
        whole_number("5", "n", low=6)
