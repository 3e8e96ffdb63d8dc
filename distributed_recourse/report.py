"""Tables and plots a person reads."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def actions_text(actions: list[dict[str, float]]) -> str:
    """`capital-gain +8,700; hours-per-week +2 | education-num -> 13`"""
    parts = []
    for action in actions:
        changes = [f"{name} {value:+,.4g}" for name, value in action.items()]
        parts.append("; ".join(changes) or "no change")
    return " | ".join(parts)


def summary_table(summary: dict[str, Any]) -> str:
    """The end-of-training table: one line per scope, then the population."""
    header = ["scope", "n", "SR", "PD", "ECR gap", "Gower(A)", "met", "steps", "steps/s"]
    rows = []
    for name, s in summary["scopes"].items():
        rows.append([name, s["n"], fmt(s["SR"]), fmt(s["PD"]), fmt(s["ECR_gap"]),
                     fmt(s["gower_active"]), "yes" if s["met_done"] else "no",
                     s["env_steps"], fmt(s["env_steps_per_s"], 1)])
    p = summary["population"]
    rows.append(["population", p["n"], fmt(p["SR"]), fmt(p["PD"]), fmt(p["ECR_gap"]),
                 fmt(p["gower_chosen"]), "", "", ""])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    title = (f"{summary['dataset']}: {summary['level']} {summary['reward']} "
             f"({summary['effectiveness']}), {summary['wall_s']:.0f} s")
    return "\n".join([title, *lines, "", *(
        f"{name}: {actions_text(s['actions'])}" for name, s in summary["scopes"].items())])
