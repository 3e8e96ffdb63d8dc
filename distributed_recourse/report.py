"""Tables and plots a person reads: the end-of-training table, and `write_report`, which turns a
run folder (train, sweep or reproduction) into DIR/report.md and a self-contained DIR/report.html,
with its plots as PNG files under DIR/plots/, so that nobody has to open a JSON file."""

from __future__ import annotations

import base64
import html
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.population import Prepared
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.describe import Features, action_text, actions_text
from distributed_recourse.result import RunResult


# --------------------------------------------------------------------- numbers and actions
def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None or np.isnan(value) else f"{100 * value:.1f}%"


def points(value: float | None) -> str:
    """A gap between two shares, in percentage points."""
    return "-" if value is None or np.isnan(value) else f"{100 * value:.1f}"


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def of_ceiling(value: float | None, ceiling: float | None) -> str:
    """`0.850 of 0.870`: a success rate beside what any feasible change could reach."""
    return f"{fmt(value)} of {fmt(ceiling)}"


def text_table(header: list[str], rows: list[list[Any]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def prepare_table(info: dict[str, Any]) -> str:
    """What `recourse prepare` found, in a few lines: the rows and why some were dropped, the
    model and its own fairness, and per group the affected people, their clusters and the
    ceiling (the share some feasible change could flip)."""
    data, model, affected = info["data"], info["model"], info["affected"]
    dropped = ", ".join(f"{n:,} {why}" for why, n in data["dropped"].items() if n) or "none"
    clusters = list(info["clusters"])
    ceiling = affected["ceiling"]
    rows = [[g, f"{n:,}", pct(ceiling["groups"][g]),
             *(f"{info['clusters'][c]['groups'].get(g, 0):,}" for c in clusters)]
            for g, n in affected["groups"].items()]
    rows.append(["all", f"{affected['n']:,}", pct(ceiling["SR"]),
                 *(f"{info['clusters'][c]['n']:,}" for c in clusters)])
    return "\n".join([
        f"{info['dataset']}: {data['rows_read']:,} rows read, {data['rows']:,} kept "
        f"(dropped: {dropped})",
        f"model {model['kind']}: accuracy {pct(model['accuracy'])} on {info['n_test']:,} test "
        f"rows; its own fairness: demographic parity difference "
        f"{fmt(model['demographic_parity_difference'])}, equalised odds difference "
        f"{fmt(model['equalized_odds_difference'])}",
        f"affected (test rows the model turns down), with the ceiling "
        f"(SR {fmt(ceiling['SR'])}, PD {fmt(ceiling['PD'])}"
        + ("" if ceiling["exact"] else ", a lower bound") + "):",
        text_table(["group", "affected", "reachable", *clusters], rows),
    ])


def summary_table(result: RunResult) -> str:
    """The end-of-training table: one line per scope, then the population, each SR beside the
    ceiling's ("SR 0.85 of a reachable 0.87")."""
    header = ["scope", "n", "SR of reachable", "PD", "ECR gap", "Gower(A)", "goal", "steps",
              "model calls", "stopped"]
    rows = []
    for name, s in result.scopes.items():
        rows.append([name, s.n, of_ceiling(s.SR, s.ceiling.SR), fmt(s.PD), fmt(s.ECR_gap),
                     fmt(s.gower_active), "met" if s.met_goal else "not met", s.steps,
                     s.model_calls, s.error or s.stop_reason or ""])
    p = result.population
    rows.append(["population", p.n, of_ceiling(p.SR, p.ceiling.SR if p.ceiling else None),
                 fmt(p.PD), fmt(p.ECR_gap), fmt(p.gower_chosen), "", "", "", ""])
    title = (f"{result.dataset}: {result.level} {result.reward} ({result.effectiveness}), "
             f"search {result.search}, {result.wall_s:.0f} s (Gower of the population: of the "
             "chosen counterfactuals)")
    return "\n".join([title, text_table(header, rows), "", *(
        f"{name}: {actions_text(s.actions, result.features)}" for name, s in result.scopes.items())])


# --------------------------------------------------------------------- the document
@dataclass
class Document:
    """A report as a list of blocks, rendered both as Markdown and as one HTML page."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", ([str(h) for h in header],
                                      [[str(c) for c in row] for row in rows])))

    def image(self, path: Path, caption: str) -> None:
        self.blocks.append(("image", (path, caption)))

    def verbatim(self, markdown: str) -> None:
        """Markdown written by another command (e.g. RESULTS.md), kept as it is."""
        self.blocks.append(("verbatim", markdown))

    def markdown(self, folder: Path) -> str:
        out = [f"# {self.title}"]
        for kind, body in self.blocks:
            if kind == "heading":
                out.append(f"{'#' * body[0]} {body[1]}")
            elif kind == "table":
                header, rows = body
                cells = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
                out.append("\n".join(["| " + " | ".join(cells[0]) + " |",
                                      "|" + "---|" * len(header),
                                      *("| " + " | ".join(row) + " |" for row in cells[1:])]))
            elif kind == "image":
                out.append(f"![{body[0].stem}]({body[0].relative_to(folder).as_posix()})\n\n*{body[1]}*")
            else:
                out.append(body)
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        """One file to mail or archive: the plots are embedded as base64 PNG."""
        e = html.escape
        out = [f"<h1>{e(self.title)}</h1>"]
        for kind, body in self.blocks:
            if kind == "heading":
                out.append(f"<h{body[0]}>{e(body[1])}</h{body[0]}>")
            elif kind == "text":
                out.append(f"<p>{e(body)}</p>")
            elif kind == "table":
                header, rows = body
                out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                           + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                                     for row in rows) + "</table>")
            elif kind == "image":
                data = base64.b64encode(body[0].read_bytes()).decode("ascii")
                out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(body[1])}">'
                           f"<figcaption>{e(body[1])}</figcaption></figure>")
            else:
                out.append(f"<pre>{e(body)}</pre>")
        return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(self.title)}"
                f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(out)
                + "\n</body></html>\n")


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45;color:#222}table{border-collapse:collapse;margin:.5rem 0 1rem;display:block;"
    "overflow-x:auto}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%}figcaption{color:#555;font-size:.9rem}"
    "pre{background:#f6f6f6;padding:1rem;overflow-x:auto}"
    "h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}"
)


# --------------------------------------------------------------------- plots
def figure(width: float = 7.5, height: float = 3.6):
    """A matplotlib figure on the Agg canvas: no display, no global pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def as_percent(ax) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def grouped_bars(
    path: Path, categories: list[str], series: dict[str, list[float]], ylabel: str,
    title: str, labels: Callable[[float], str], ymax: float | None = None, percent: bool = False,
) -> Path:
    """One cluster of bars per category, one bar (and colour) per group, each with its value."""
    fig = figure()
    ax = fig.subplots()
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(categories))
    for g, (name, values) in enumerate(series.items()):
        heights = np.array([np.nan if v is None else v for v in values], dtype=float)
        bars = ax.bar(x + (g - (len(series) - 1) / 2) * width, np.nan_to_num(heights), width,
                      label=name, color=f"C{g}")
        ax.bar_label(bars, ["" if np.isnan(h) else labels(h) for h in heights], fontsize=8)
    ax.set_xticks(x, categories)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    if percent:
        as_percent(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return save(fig, path)


# --------------------------------------------------------------------- train runs
LEVELS = {
    "individual": "a set of actions per cluster of similar people, each judged on its cluster",
    "group": "one set of actions for all affected people",
    "hybrid": "a set of actions per cluster, with fairness measured over the whole population",
}


SEARCHES = {
    "sac/proposal": "SAC: each step proposes a whole action, improving the best set found",
    "sac/reference": "SAC, the paper's formulation: each step moves one entry of the set",
    "random": "random candidate actions (no learning), the best set among them",
    "greedy": "coordinate hill climbing (no learning), the best set among its moves",
}
"""What each search is, in words."""

EFFECTIVENESS = {
    "micro": "at least one action of the set works for",
    "macro": "the group's single most effective action works for",
}
"""What a group's effectiveness p_g counts, in words."""


def goal_text(config: RunConfig) -> str:
    s, w = config.search, config.reward
    if s.kind == "sac" and s.mdp == "reference" and s.goal_sr is None and s.goal_pd is None:
        ee = f"SR ≥ {w.done_sr:g} and PD ≤ {w.done_pd:g}"
        ecr = "every group has an effective action and all have the same share of them"
        return {"EE": ee, "ECR": ecr, "EE-ECR": f"{ee}; {ecr}"}[w.reward]
    sr = f"SR ≥ {s.goal_sr:g}" if s.goal_sr is not None else \
        f"SR ≥ {s.goal_share:.0%} of the ceiling's SR"
    pd = f"PD ≤ {s.goal_pd:g}" if s.goal_pd is not None else \
        f"PD ≤ the ceiling's PD + {s.goal_pd_margin:g} (at least {s.goal_pd_floor:g})"
    return f"{sr} and {pd} (each scope's table row gives its own)"


def read_archive(path: Path) -> pd.DataFrame:
    """archive.csv, empty when the run archived nothing (the file then has no header)."""
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=["scope", "step", "SR", "PD"])


@dataclass
class Reevaluated:
    """Each person's recourse under their scope's final set, measured again exactly: what the
    summary keeps only as averages."""

    groups: np.ndarray
    """(n,) group code per person, over all scopes."""
    cost: np.ndarray
    """(n,) Gower distance of the person's chosen counterfactual, inf if no action works."""
    shares: dict[str, np.ndarray]
    """Per scope, (N, k) share of each group that each action flips."""
    chosen: dict[str, np.ndarray]
    """Per scope, (N,) people for whom each action is the closest that works."""
    distinct: dict[str, np.ndarray]


def reevaluate(prepared: Prepared, result: RunResult, n_actions: int) -> Reevaluated:
    space = ActionSpace(prepared.model.space.actionable, n_actions)
    population = prepared.population
    k = len(population.group_names)
    groups, costs, shares, chosen, distinct = [], [], {}, {}, {}
    for name, s in result.scopes.items():
        scope = population.scope(name)
        action_set = np.array(s.set)
        outcome = M.evaluate_set(space, scope.X, action_set, prepared.model.favourable)
        people = M.person_outcome(outcome)
        counts = M.action_effectiveness(outcome.flipped, scope.groups, k)
        shares[name] = M.share_per_action(counts, np.bincount(scope.groups, minlength=k))
        chosen[name] = np.bincount(people.chosen[people.valid], minlength=len(action_set))
        distinct[name] = space.distinct(action_set)
        groups.append(scope.groups)
        costs.append(people.cost)
    return Reevaluated(np.concatenate(groups), np.concatenate(costs), shares, chosen, distinct)


def headline(result: RunResult, config: RunConfig) -> str:
    """The result in plain words: who has recourse, how unequal it is, what it costs, and how
    that compares with what any feasible change could reach."""
    p = result.population
    sentences = [f"Under {result.level} fairness, {pct(p.validity)} of the {p.n:,} "
                 "affected people have at least one recourse action that works"]
    if p.ceiling is not None:
        sentences.append(
            f"The success rate is {pct(p.SR)} of a reachable {pct(p.ceiling.SR)}: the ceiling, "
            "the share some feasible change of the actionable features could flip, group by "
            "group" + ("" if p.ceiling.exact else " (a lower bound: the search for it was cut "
                       "short)"))
    rates = {g: v.effectiveness for g, v in p.groups.items() if v.effectiveness is not None}
    if len(rates) > 1:
        high, low = max(rates, key=rates.get), min(rates, key=rates.get)
        among = "" if len(rates) == 2 else f" (the best and worst served of {len(rates)} groups)"
        sentences[0] += (f"; the success rate is {pct(rates[high])} in every group"
                         if rates[high] == rates[low] else
                         f"; the success rate differs by {points(p.PD)} points between "
                         f"{high} ({pct(rates[high])}) and {low} ({pct(rates[low])}){among}")
        choice = {g: v.choice for g, v in p.groups.items() if v.choice is not None}
        sentences.append(
            f"The share of actions that work for at least {config.reward.phi:.0%} of a group is "
            + ", ".join(f"{pct(a)} for {g}" for g, a in choice.items())
            + f" (a gap of {points(p.ECR_gap)} points)")
    if p.gower_chosen is not None:
        sentences.append(
            f"The closest action that works changes {p.sparsity:.1f} features on average and "
            f"moves a person by a Gower distance of {p.gower_chosen:.3f} (0 is no change, 1 "
            "every actionable feature across its whole range)"
            + (f"; {pct(p.plausibility)} of these counterfactuals look like people the model "
               "accepts" if p.plausibility is not None else ""))
    held = result.heldout
    if held is not None:
        sentences.append(f"On the {held.n:,} affected people held out from the search, "
                         f"{pct(held.validity)} have an action that works and the success rate "
                         f"differs by {points(held.PD)} points between groups")
    missed = [name for name, s in result.scopes.items() if not s.met_goal]
    if missed:
        sentences.append(f"No set meeting the goal was found for {' and '.join(missed)}; the "
                         "actions shown there are the best set seen during the search")
    else:
        sentences.append("Every scope found sets meeting its goal")
    for error in result.errors:
        sentences.append(f"The run did not finish cleanly: {error}")
    return ". ".join(sentences) + "."


def per_scope(budget: float | dict[str, float], text) -> str:
    """A budget for every scope, or one per scope name, in words."""
    if isinstance(budget, dict):
        return "; ".join(f"{text(value)} for {scope}" for scope, value in budget.items())
    return f"{text(budget)} per scope"


def run_section(doc: Document, result: RunResult, config: RunConfig) -> None:
    t, w, search = config.train, config.reward, config.search
    budget = [f"each scope stops {search.patience:,} steps after its best set last improved once "
              f"it meets its goal, or {search.stall:,} steps after, met or not"]
    if t.env_steps:
        budget.append(f"at most {t.env_steps:,} steps per scope")
    if t.time_budget_s:
        budget.append("at most " + per_scope(t.time_budget_s, duration))
    if t.max_model_calls:
        budget.append("at most " + per_scope(t.max_model_calls, lambda calls: f"{calls:,} model calls"))
    if t.stop_archived:
        budget.append(f"stopping after {t.stop_archived} successful sets")
    doc.heading("What was run")
    doc.table(["setting", "value"], [
        ["dataset", result.dataset],
        ["fairness level", f"{result.level}: {LEVELS[result.level]}"],
        ["search", SEARCHES.get(result.search, result.search)],
        ["reward", f"{w.reward} with {w.effectiveness} effectiveness"],
        ["goal (a successful set)", goal_text(config)],
        ["actions per set", f"{w.n_actions}; an action is an effective choice for a group when "
                            f"it works for at least {w.phi:.0%} of it"],
        ["model", config.model.kind],
        ["when a scope stops", "; ".join(budget)],
        ["final set", f"picked from the archive of successful sets by {t.selection}"],
        ["wall time", duration(result.wall_s)],
        ["seed", config.seed],
    ])


def population_section(doc: Document, info: dict[str, Any]) -> None:
    """The black box's own accuracy and fairness, and who it turns down."""
    model = info["model"]
    doc.heading("The model and the affected people")
    doc.text(f"The {model['kind']} model is {pct(model['accuracy'])} accurate on the "
             f"{info['n_test']:,} test rows of {info['dataset']} ({info['n_rows']:,} rows), which "
             "it was not trained on. "
             f"Its own fairness: the favourable-outcome rate differs by "
             f"{points(model['demographic_parity_difference'])} points between groups "
             f"(demographic parity difference), its true or false positive rate by up to "
             f"{points(model['equalized_odds_difference'])} points (equalised odds difference). "
             f"Recourse is sought for {info['affected']['n']:,} test people it turns down (the "
             f"affected people), in {len(info['clusters'])} clusters"
             + (f"; {info['holdout']['n']:,} more are held out from the search to measure its "
                "sets on unseen people." if "holdout" in info else "."))
    clusters = list(info["clusters"])
    rows = []
    for group, n in info["affected"]["groups"].items():
        g = model["groups"].get(group, {})
        rows.append([group, g.get("n", "-"), pct(g.get("favourable_rate")), pct(g.get("tpr")),
                     pct(g.get("fpr")), f"{n:,}",
                     *(info["clusters"][c]["groups"].get(group, 0) for c in clusters)])
    doc.table(["group", "test rows", "favourable rate", "true positive rate",
               "false positive rate", "affected", *(f"in {c}" for c in clusters)], rows)


def scopes_section(doc: Document, result: RunResult, config: RunConfig) -> None:
    p = result.population
    doc.heading("Results per scope")
    mode = config.reward.effectiveness
    doc.text(f"SR: the mean over groups of the share of a group that {EFFECTIVENESS[mode]} "
             f"({mode} effectiveness), beside the ceiling: the share some feasible change could "
             "flip. PD: the largest gap in that share between groups. ECR gap: the largest gap "
             "between groups in the share of the set's actions that are an effective choice for "
             "them. Gower: the mean distance of the actions that work (0 is no change). Each "
             "scope is measured on its own people; the population row puts each person under "
             "their own scope's set, and the held-out row (when the run held people out) does "
             "the same for affected people the search never saw.")
    rows = [[name, f"{s.n:,}", pct(s.SR), pct(s.ceiling.SR), points(s.PD), points(s.ECR_gap),
             fmt(s.gower_active), f"{s.n_active} of {len(s.actions)}",
             "yes" if s.met_goal else "no", s.archived, f"{s.steps:,}", f"{s.model_calls:,}",
             fmt(s.steps_per_s, 1), s.stop_reason or "-"] for name, s in result.scopes.items()]
    for name, q in (("population", p), ("held-out people", result.heldout)):
        if q is not None:
            rows.append([name, f"{q.n:,}", pct(q.SR), pct(q.ceiling.SR) if q.ceiling else "-",
                         points(q.PD), points(q.ECR_gap), "", "", "", "", "", "", "", ""])
    doc.table(["scope", "people", "SR", "reachable", "PD (points)", "ECR gap (points)",
               "Gower (active)", "active actions", "goal met", "successful sets", "steps",
               "model calls", "steps/s", "stopped because"], rows)
    within, cost = p.effectiveness_within_budget, p.cost_of_effectiveness
    doc.table(["population measure", "value"], [
        ["validity (has an action that works)", pct(p.validity)],
        ["Gower of the closest action that works", fmt(p.gower_chosen)],
        ["features it changes", fmt(p.sparsity, 2)],
        ["plausible (accepted by an outlier detector fitted on favourable people)",
         pct(p.plausibility)],
        [f"has an action within Gower {within['budget']:g}: gap between groups (points)",
         points(within["gap"])],
        [f"Gower needed to reach {cost['level']:.0%} of a group: gap between groups",
         fmt(cost["gap"])],
    ])
    for error in result.errors:
        doc.text(f"Failure: {error}")


def actions_section(
    doc: Document, result: RunResult, features: Features, again: Reevaluated,
    group_names: list[str], phi: float,
) -> None:
    doc.heading("The recourse actions")
    doc.text(f"Each scope's final set, one action per row. Changes marked + or - are added to "
             f"a person's value; → names the value a person moves to. The group columns give the "
             f"share of the group that the action alone works for (✓: at least {phi:.0%}, an "
             f"effective choice); 'chosen by' counts the people for whom it is the closest "
             f"action that works.")
    for name, s in result.scopes.items():
        state = (f"goal met, picked from {plural(s.archived, 'successful set')}" if s.met_goal
                 else "no successful set: the best set seen")
        doc.heading(f"{name} ({s.n:,} people; {state})", 3)
        rows = []
        for j, action in enumerate(s.actions):
            text = action_text(action, features)
            if not again.distinct[name][j]:
                text += f" (same as #{s.actions.index(action) + 1})"
            share = again.shares[name][j]
            marks = [pct(v) + (" ✓" if v >= phi and again.distinct[name][j] else "")
                     for v in share]
            rows.append([j + 1, text, *marks, f"{again.chosen[name][j]:,}"])
        doc.table(["#", "what to change", *group_names, "chosen by"], rows)


def effectiveness_section(
    doc: Document, result: RunResult, group_names: list[str], plots: Path,
    config: RunConfig,
) -> None:
    doc.heading("Effectiveness per group")
    scopes = {**result.scopes, "population": result.population}
    series = {g: [s.groups[g].effectiveness for s in scopes.values()] for g in group_names}
    path = grouped_bars(plots / "effectiveness.png", list(scopes), series,
                        f"share with recourse ({config.reward.effectiveness})",
                        "Effectiveness per group and scope", pct, ymax=1.12, percent=True)
    doc.image(path, f"Share of each group that {EFFECTIVENESS[config.reward.effectiveness]}, "
                    "per scope and over the population (each person under their scope's set).")
    doc.table(["group", *scopes], [
        [g, *(f"{pct(s.groups[g].effectiveness)} of {pct(s.groups[g].ceiling)}"
              for s in scopes.values())] for g in group_names])

    doc.heading("Equal choice of recourse")
    n = config.reward.n_actions
    series = {g: [s.groups[g].effective_actions for s in result.scopes.values()]
              for g in group_names}
    path = grouped_bars(plots / "choice.png", list(result.scopes), series,
                        f"effective actions (of {n})", "Effective actions per group and scope",
                        lambda v: f"{v:.0f}", ymax=n + 0.6)
    doc.image(path, f"Distinct actions that work for at least {config.reward.phi:.0%} of the "
                    f"group, out of the {n} in each scope's set.")


def gower_section(doc: Document, again: Reevaluated, group_names: list[str], plots: Path) -> None:
    doc.heading("How far people have to go")
    valid = np.isfinite(again.cost)
    rows, costs, weights = [], [], []
    for g, name in enumerate(group_names):
        mine = again.groups == g
        cost = again.cost[mine & valid]
        costs.append(cost)
        weights.append(np.full(len(cost), 1.0 / max(mine.sum(), 1)))
        rows.append([name, f"{mine.sum():,}", f"{len(cost):,}",
                     *(fmt(float(f(cost))) if len(cost) else "-"
                       for f in (np.mean, np.median, np.max))])
    doc.text("Each person's chosen counterfactual is the closest of their scope's actions that "
             "works for them.")
    doc.table(["group", "people", "with an action that works", "mean Gower", "median Gower",
               "largest Gower"], rows)
    if not valid.any():
        doc.text("No action works for anybody, so there is no distance to show.")
        return
    fig = figure()
    ax = fig.subplots()
    ax.hist(costs, bins=np.linspace(0.0, max(float(again.cost[valid].max()), 1e-3), 21),
            weights=weights, color=[f"C{g}" for g in range(len(group_names))],
            label=group_names)
    as_percent(ax)
    ax.set_xlabel("Gower distance of the closest action that works (0 = no change)")
    ax.set_ylabel("share of the group")
    ax.set_title("Distance to each person's chosen counterfactual")
    ax.legend(frameon=False)
    doc.image(save(fig, plots / "gower.png"),
              "Gower distance of the chosen counterfactuals per group; each group's bars add up "
              "to the share of it that has an action that works.")


def progress_section(doc: Document, run: Path, result: RunResult, plots: Path) -> None:
    doc.heading("Progress of the search")
    archive = read_archive(run / "archive.csv")
    if archive.empty:
        doc.text("Nothing was archived: no scope found a successful set within its budget, so "
                 "each scope's actions above are the best set seen, not a successful one.")
        return
    fig = figure()
    ax = fig.subplots()
    rows = []
    for i, (name, s) in enumerate(result.scopes.items()):
        mine = archive[archive.scope == name].sort_values("step")
        if mine.empty:
            rows.append([name, 0, "-", "-", "-"])
            continue
        score = (mine.SR - mine.PD).to_numpy()
        steps = mine.step.to_numpy()
        end = max(s.steps, int(steps[-1]))
        ax.step([*steps, end], [*np.maximum.accumulate(score), score.max()], where="post",
                color=f"C{i}", label=name)
        ax.scatter(steps, score, s=14, color=f"C{i}", alpha=0.5)
        first = mine.iloc[0]
        rows.append([name, len(mine), f"{int(first.step):,}", f"{int(first.model_calls):,}",
                     fmt(float(score.max()))])
    ax.set_xlim(left=0)
    ax.set_xlabel("environment steps of the scope's trainer")
    ax.set_ylabel("best SR - PD so far")
    ax.set_title("Successful sets found during training")
    ax.legend(frameon=False)
    path = save(fig, plots / "progress.png")
    doc.text("Every distinct successful set the search found is archived; the final set is "
             "picked from the archive. SR and PD here are as the search measured them (under "
             "hybrid fairness, PD over the whole population at that moment).")
    doc.table(["scope", "successful sets", "first at step", "first after model calls",
               "best SR - PD"], rows)
    doc.image(path, "Best SR - PD among the sets archived so far (line) and each archived set "
                    "(dots), against the trainer's environment steps.")


def train_report(doc: Document, run: Path) -> None:
    """A `recourse train` run: summary.json, archive.csv and the prepared population."""
    if not Prepared.exists(run):
        raise ConfigError(f"{run} holds summary.json but not the prepared population "
                          "(population.json, prepared/) the report re-evaluates")
    result = RunResult.load(run)
    config = RunConfig.from_dict(result.config, str(run / "summary.json"))
    prepared = Prepared.load(run)
    group_names = prepared.population.group_names
    again = reevaluate(prepared, result, config.reward.n_actions)
    plots = run / "plots"
    doc.title = f"Recourse on {result.dataset}: {result.level} fairness, {result.reward}"
    doc.text(headline(result, config))
    run_section(doc, result, config)
    population_section(doc, prepared.summary)
    scopes_section(doc, result, config)
    actions_section(doc, result, prepared.model.space.describe_actionable(), again, group_names,
                    config.reward.phi)
    effectiveness_section(doc, result, group_names, plots, config)
    gower_section(doc, again, group_names, plots)
    progress_section(doc, run, result, plots)
    audit_section(doc, run)


def audit_section(doc: Document, run: Path) -> None:
    """`recourse audit`'s FACTS measures, when the run has been audited."""
    if not (run / "audit.json").is_file():
        return
    from distributed_recourse.audit import audit_sections

    doc.heading("Fairness of recourse, audited")
    doc.text("FACTS' fairness-of-recourse measures of the final sets (`recourse audit`), per "
             "group: equal effectiveness, equal choice of recourse, equal effectiveness within "
             "budget and equal cost of effectiveness, the same figures aif360's FACTS functions "
             "give for the same lists.")
    for heading, header, rows in audit_sections(json.loads((run / "audit.json").read_text())):
        doc.heading(heading, 3)
        doc.table(header, rows)


# --------------------------------------------------------------------- sweeps, reproductions
def frame_table(doc: Document, frame: pd.DataFrame) -> None:
    """A CSV written by another command as a table, without its empty columns and file paths."""
    frame = frame.drop(columns=["path"], errors="ignore").dropna(axis=1, how="all")
    doc.table([str(c).removeprefix("param:") for c in frame.columns],
              [[fmt(v) if isinstance(v, float) and not np.isnan(v) else ("-" if pd.isna(v) else v)
                for v in row] for row in frame.itertuples(index=False)])


def sweep_report(doc: Document, run: Path, shown: int = 20) -> None:
    """A sweep: trials.csv (one row per configuration) and its Pareto front, pareto.csv."""
    trials = pd.read_csv(run / "trials.csv") if (run / "trials.csv").is_file() else None
    front = pd.read_csv(run / "pareto.csv") if (run / "pareto.csv").is_file() else None
    if (run / "population.json").is_file():
        population_section(doc, json.loads((run / "population.json").read_text()))
    doc.heading("Sweep")
    if trials is not None and {"SR", "PD"} <= set(trials.columns):
        fig = figure(6.5, 4.5)
        ax = fig.subplots()
        ax.scatter(trials.PD, trials.SR, color="lightgray", label="trial")
        if front is not None and not front.empty:
            ax.scatter(front.PD, front.SR, color="C3", label="Pareto front")
        ax.set_xlabel("PD (gap in effectiveness between groups)")
        ax.set_ylabel("SR (population success rate)")
        ax.set_title("Success against fairness, one dot per trial")
        ax.legend(frameon=False)
        doc.image(save(fig, run / "plots" / "sweep.png"),
                  "Each trial's population SR and PD; in red the Pareto front: the trials no "
                  "other trial beats on every objective at once.")
    if front is not None:
        doc.heading("Pareto front", 3)
        doc.text(f"{len(front)} trials no other trial beats on every objective at once.")
        frame_table(doc, front)
    if trials is not None:
        if "objective" in trials:
            trials = trials.sort_values("objective", ascending=False)
        doc.heading("Trials", 3)
        doc.text(f"{len(trials)} trials" + (f"; the {shown} with the highest objective shown"
                                             if len(trials) > shown else "") + ".")
        frame_table(doc, trials.head(shown))


def reproduce_report(doc: Document, run: Path) -> None:
    """A reproduction of the paper's figures: results.csv and RESULTS.md."""
    doc.heading("Reproduction")
    table = (run / "results.csv").is_file()
    if (run / "RESULTS.md").is_file():
        for paragraph in (run / "RESULTS.md").read_text().split("\n\n"):
            paragraph = paragraph.strip()
            if paragraph.startswith("#"):
                doc.heading(paragraph.lstrip("#").strip(), 3)
            elif paragraph.startswith("|"):
                if not table:  # else results.csv below is the same table
                    doc.verbatim(paragraph)
            elif paragraph:
                doc.text(paragraph)
    if table:
        frame_table(doc, pd.read_csv(run / "results.csv"))


KINDS: list[tuple[tuple[str, ...], Callable[[Document, Path], None]]] = [
    (("summary.json",), train_report),
    (("trials.csv", "pareto.csv"), sweep_report),
    (("results.csv", "RESULTS.md"), reproduce_report),
]
"""What a run folder may hold (any of the files) and the section that renders it."""


def write_report(run_dir: str | Path) -> Path:
    """Render whatever the run folder holds into report.md and report.html (and plots/);
    returns the Markdown file."""
    run = Path(run_dir)
    doc = Document(f"Recourse run {run.resolve().name}")
    found = [render for names, render in KINDS if any((run / n).is_file() for n in names)]
    if not found:
        expected = ", ".join(n for names, _ in KINDS for n in names)
        raise ConfigError(f"{run} holds no run results: expected one of {expected}")
    shutil.rmtree(run / "plots", ignore_errors=True)  # no plot of an earlier report lingers
    for render in found:
        render(doc, run)
    (run / "report.html").write_text(doc.html())
    path = run / "report.md"
    path.write_text(doc.markdown(run))
    return path
