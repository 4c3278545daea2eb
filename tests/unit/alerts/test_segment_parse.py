"""Segment trees from JSON: cleaned when right, and each fault named by its path."""

from __future__ import annotations

import pytest

from clarion.alerts import segments
from clarion.errors import ValidationError


def faults(raw) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        segments.parse(raw)
    return caught.value.errors


def test_a_good_tree_comes_back_cleaned():
    raw = {
        "all": [
            {"type": "subscribed", "list": 3, "after": "2026-01-05"},
            {"not": {"type": "signed", "petition": 7}},
            {
                "any": [
                    {"type": "tag", "tags": [5, 2, 5]},
                    {"type": "language", "languages": ["ru"]},
                ]
            },
            {"type": "inactive", "days": 180},
        ]
    }
    tree = segments.parse(raw)
    assert tree["all"][2]["any"][0] == {"type": "tag", "tags": [2, 5]}
    assert tree["all"][1] == {"not": {"type": "signed", "petition": 7}}
    assert tree["all"][0] == {"type": "subscribed", "list": 3, "after": "2026-01-05"}
    assert [p for p, _leaf in segments.leaves(tree)] == [
        "conditions.all[0]",
        "conditions.all[1].not",
        "conditions.all[2].any[0]",
        "conditions.all[2].any[1]",
        "conditions.all[3]",
    ]


def test_each_fault_is_named_by_its_path():
    errors = faults(
        {
            "all": [
                {"type": "signed", "petition": "seven"},
                {"any": [{"type": "clicked"}, {"type": "teleported"}]},
                {"not": {"type": "language", "languages": ["Russian"], "colour": "red"}},
                {"type": "received", "alert": True},
                {"type": "clicked", "alert": 4, "link": -1},
            ]
        }
    )
    assert set(errors) == {
        "conditions.all[0].petition",
        "conditions.all[1].any[0].alert",
        "conditions.all[1].any[1].type",
        "conditions.all[2].not.languages",
        "conditions.all[2].not.colour",
        "conditions.all[3].alert",
        "conditions.all[4].link",
    }
    assert errors["conditions.all[0].petition"] == "Must be an id (a whole number above 0)."
    assert errors["conditions.all[1].any[0].alert"] == "Required."
    assert "teleported" in errors["conditions.all[1].any[1].type"]
    assert "signed" in errors["conditions.all[1].any[1].type"]  # it lists what there is


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ([], "conditions", '{"all": [...]}'),
        ({"all": []}, "conditions.all", "non-empty list"),
        ({"all": [], "any": []}, "conditions", '{"not": {...}}'),
        ({"type": "inactive"}, "conditions", "either"),
        ({"type": "inactive", "days": 3, "alerts": 2}, "conditions", "either"),
        ({"type": "inactive", "days": 0}, "conditions.days", "from 1 to 10000"),
        ({"type": "subscribed", "list": 1, "after": "2026-13-01"}, "conditions.after", "YYYY"),
        (
            {"type": "subscribed", "list": 1, "after": "2026-05-01", "before": "2026-04-01"},
            "conditions.before",
            "after",
        ),
        ({"type": "country", "countries": ["by"]}, "conditions.countries", "two-letter"),
        ({"type": "tag", "tags": []}, "conditions.tags", "non-empty"),
    ],
)
def test_bad_input_says_what_to_fix(raw, path, words):
    errors = faults(raw)
    assert path in errors, errors
    assert words in errors[path]


def test_a_tree_too_deep_or_too_big_is_refused():
    deep: dict = {"type": "signed"}
    for _ in range(segments.MAX_DEPTH):
        deep = {"not": deep}
    assert "levels" in " ".join(faults(deep).values())
    wide = {"any": [{"type": "signed"}] * (segments.MAX_NODES + 1)}
    assert "Too many conditions" in faults(wide)["conditions"]


def test_clicks_are_read_only_by_the_conditions_that_need_them():
    assert segments.uses_clicks({"not": {"type": "clicked", "alert": 1}})
    assert segments.uses_clicks(
        {"any": [{"type": "tag", "tags": [1]}, {"type": "inactive", "days": 9}]}
    )
    assert not segments.uses_clicks({"all": [{"type": "signed"}, {"type": "received", "alert": 1}]})
    assert not segments.uses_clicks(None)
