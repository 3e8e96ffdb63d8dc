"""Actions in words, the same text everywhere a person reads one: the end-of-run table, the
report, each explained row and the HTTP answer.

An action is read through `FeatureSpace.describe_actionable()` (per feature: kind, direction,
for a categorical feature its category names, and the schema's readable `labels` of its
values): `con` entries are changes (`capital-gain +8,700`), `ord`/`cat` entries are targets
(`education-num at least 13`, a category by name), read by their label where the schema gives
one (`education-num at least Bachelors`, `STATUS_ACCOUNT → no checking account`)."""

from __future__ import annotations

from typing import Any

from distributed_recourse.data.schema import value_key

Features = dict[str, dict[str, Any]]
"""Actionable feature name -> kind, direction, (cat) categories and (optional) labels: what
reading an action needs."""


def number(value: float) -> str:
    """Large or whole values with thousands separators, small ones to 3 significant digits."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def change_text(name: str, value: float, feature: dict[str, Any]) -> str:
    """`con` entries are changes (`capital-gain +8,700`), `ord`/`cat` entries are targets
    (`education-num → 13`, a category by name; either by its label where it has one); a one-way
    feature never moves back, so its target is a floor (`at least 13`) or a ceiling."""
    if feature["kind"] == "con":
        return f"{name} {'+' if value > 0 else '-'}{number(abs(value))}"
    if feature["kind"] == "cat":
        code = target = feature["categories"][int(value)]
    else:
        code, target = value_key(value), number(value)
    target = feature.get("labels", {}).get(code, target)
    bound = {"increase": "at least", "decrease": "at most"}.get(feature["direction"], "→")
    return f"{name} {bound} {target}"


def action_text(action: dict[str, float], features: Features) -> str:
    return "; ".join(change_text(name, value, features[name])
                     for name, value in action.items()) or "no change"


def actions_text(actions: list[dict[str, float]], features: Features) -> str:
    """`capital-gain +8,700; hours-per-week +2 | education-num at least 13`"""
    return " | ".join(action_text(action, features) for action in actions)
