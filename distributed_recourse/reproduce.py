"""The paper's experiments on one dataset, and the yardsticks every search result stands beside.

`reproduce` runs levels x rewards, the unconstrained runs that measure the cost of fairness and
the clustering ablation (DESIGN.md section 5), as one sweep; sets are learned on half of the
affected people and also measured on the other half (the paper measures in-sample only). Then
`compare_searches` puts, per level, the default search beside the ceiling and the non-learned
baselines at equal model calls and at equal wall time (DESIGN.md section 8).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from distributed_recourse.config import RunConfig
from distributed_recourse.recourse.metrics import cost_of_fairness
from distributed_recourse.result import RunResult, atomic_write
from distributed_recourse.sweep import SweepSpec, sweep

LEVELS = ("individual", "group", "hybrid")
PAIRINGS = (("EE", "micro"), ("EE", "macro"), ("ECR", "macro"), ("EE-ECR", "micro"))
ABLATION_CLUSTERS = (1, 2, 5)  # k = 3 is the hybrid EE-ECR row itself
REFERENCE = {
    "adult": "SR 0.94 to 0.97, PD 0.003 to 0.023; best sets SR 0.99 / PD 0.00",
    "alzheimer": "SR 0.79 to 0.87, PD 0.04 to 0.07",
    "ssl": "SR 0.91 to 0.98 and PD 0 to 0.11 across the paper's datasets",
}
UNCONSTRAINED = {"reward.reward": "EE", "reward.effectiveness": "micro", "reward.pd": 0.0,
                 "reward.done_pd": 1.0, "search.goal_pd": 1.0}
"""Success and proximity terms only: no PD in the reward or the goal."""
BASELINES = ("random", "greedy")
UNBOUNDED = 10**9
"""A baseline compared at a budget runs to the budget, not to its own stop rule."""


def paper_grid() -> dict[str, dict[str, Any]]:
    grid = {}
    for level in LEVELS:
        for reward, effectiveness in PAIRINGS:
            grid[f"{level} {reward} {effectiveness}"] = {
                "level": level, "reward.reward": reward, "reward.effectiveness": effectiveness}
    for level in ("individual", "group"):  # hybrid's baseline is individual's: no group terms
        grid[f"{level} unconstrained"] = {"level": level, **UNCONSTRAINED}
    for k in ABLATION_CLUSTERS:
        grid[f"hybrid EE-ECR micro k={k}"] = {
            "level": "hybrid", "reward.reward": "EE-ECR", "reward.effectiveness": "micro",
            "population.clusters": k}
    return grid


def base_config(dataset: str, data_path: str | None, budget_s: float | None,
                env_steps: int | None, mdp: str) -> RunConfig:
    return RunConfig.from_dict({
        "dataset": {"name": dataset, "path": data_path},
        "population": {"holdout": True},
        "search": {"mdp": mdp},
        "train": {"env_steps": env_steps, "time_budget_s": budget_s},
    })


def reproduce(
    dataset: str, output: str | Path, budget_s: float | None = None, env_steps: int | None = None,
    data_path: str | None = None, address: str | None = None, resume: bool = False,
    mdp: str = "proposal", callbacks: list | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the grid and the comparison with the baselines; write results.csv, searches.csv and
    RESULTS.md into `output`. Returns both tables."""
    output = Path(output)
    base = base_config(dataset, data_path, budget_s, env_steps, mdp)
    grid = paper_grid()
    by_name = run_experiments(base, grid, output, address, resume, callbacks, check="reproduce")
    table = results_table(by_name, grid)
    learned = {level: by_name[f"{level} EE-ECR micro"] for level in LEVELS}
    share_prepared(output, output / "baselines")  # the same people, model and clusters
    searches = compare_searches(base, learned, output / "baselines", address, resume, callbacks)
    atomic_write(output / "results.csv", table.to_csv(index=False))
    atomic_write(output / "searches.csv", searches.to_csv(index=False))
    atomic_write(output / "RESULTS.md", markdown(dataset, table, searches, base))
    return table, searches


def run_experiments(
    base: RunConfig, experiments: dict[str, dict[str, Any]], output: Path,
    address: str | None = None, resume: bool = False, callbacks: list | None = None,
    check: str | None = None,
) -> dict[str, RunResult]:
    """Named sets of overrides of `base`, run as one sweep (a trial each); their results by
    name. `check`: validate the overrides first, naming this source in errors."""
    spec = SweepSpec(base=base, search={"experiment": {"grid": list(experiments)}},
                     experiments=experiments)
    if check:
        spec.check(check)
    trials, outcomes = sweep(spec, output, address=address, resume=resume, callbacks=callbacks)
    return {trials.loc[trials.trial == t, "param:experiment"].item(): o
            for t, o in outcomes.items()}


def share_prepared(source: Path, target: Path) -> None:
    """Give a second sweep the first one's prepared population (deterministic, but slow to
    prepare again)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "prepared", target / "prepared", dirs_exist_ok=True)
    shutil.copy2(source / "population.json", target / "population.json")


def results_table(outcomes: dict[str, RunResult], grid: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = {}
    for name, r in outcomes.items():
        p, held = r.population, r.heldout
        row = {"experiment": name, "level": r.level, "reward": r.reward,
               "effectiveness": r.effectiveness, "k": len(r.scopes),
               "ceiling SR": p.ceiling.SR if p.ceiling else None}
        for key in ("SR", "PD", "ECR_gap", "gower_chosen", "validity", "sparsity",
                    "plausibility"):
            row[key] = getattr(p, key)
        for group, figures in p.groups.items():
            row[f"ECR a[{group}]"] = figures.choice
        for key in ("SR", "PD", "ECR_gap", "validity", "gower_chosen"):
            row[f"heldout {key}"] = getattr(held, key) if held else None
        row["model_calls"] = sum(s.model_calls for s in r.scopes.values())
        row["wall_s"] = r.wall_s
        rows[name] = row
    for name, row in rows.items():
        baseline = rows.get(f"{'group' if row['level'] == 'group' else 'individual'} unconstrained")
        if baseline and "unconstrained" not in name and row["gower_chosen"] is not None \
                and baseline["gower_chosen"] is not None:
            cost = cost_of_fairness(row, baseline)
            row["cost SR_drop"], row["cost gower_rise"] = cost["SR_drop"], cost["gower_rise"]
    return pd.DataFrame([rows[name] for name in grid if name in rows])


# --------------------------------------------------------------------- the yardsticks
def baseline_experiments(learned: dict[str, RunResult]) -> dict[str, dict[str, Any]]:
    """Per level and baseline, the learned run's budget, scope by scope: the model calls or
    the training time it spent on each scope; the baseline runs to it, or to 4 times the
    learned run's steps, where a small action space is spent before its model calls are
    (every proposal then repeats an action already asked about)."""
    experiments = {}
    for level, result in learned.items():
        calls = {name: s.model_calls for name, s in result.scopes.items()}
        seconds = {name: s.train_s for name, s in result.scopes.items()}
        steps = 4 * max(max(s.steps, s.model_calls) for s in result.scopes.values())
        for kind in BASELINES:
            common = {"level": level, "search.kind": kind, "search.patience": UNBOUNDED,
                      "search.stall": UNBOUNDED, "train.env_steps": steps}
            experiments[f"{level} {kind} calls"] = {**common, "train.max_model_calls": calls}
            experiments[f"{level} {kind} time"] = {**common, "train.time_budget_s": seconds}
    return experiments


def compare_searches(
    base: RunConfig, learned: dict[str, RunResult], output: Path, address: str | None = None,
    resume: bool = False, callbacks: list | None = None,
) -> pd.DataFrame:
    """Per level: the ceiling, the learned search, and each baseline at equal model calls and
    at equal wall time; SR, PD, ECR gap, Gower of chosen counterfactuals, model calls, wall
    time. `learned`: the learned search's RunResult per level (of `base` at that level)."""
    by_name = run_experiments(base, baseline_experiments(learned), output, address, resume,
                              callbacks)
    rows = []
    for level, result in learned.items():
        rows.append(search_row(level, result.search, "-", result))
        for kind in BASELINES:
            for budget, words in (("calls", "equal model calls"), ("time", "equal wall time")):
                rows.append(search_row(level, kind, words, by_name[f"{level} {kind} {budget}"]))
    return pd.DataFrame(rows)


def compare_levels(
    base: RunConfig, output: Path, levels: tuple[str, ...] = LEVELS, address: str | None = None,
    resume: bool = False, callbacks: list | None = None,
) -> pd.DataFrame:
    """`compare_searches` for a config of one's own: the learned search at each level first,
    then the baselines at its budgets (benchmarks/search_vs_baseline.py runs it per dataset)."""
    learned = run_experiments(base, {level: {"level": level} for level in levels},
                              output / "learned", address, resume, callbacks)
    share_prepared(output / "learned", output / "baselines")
    return compare_searches(base, {level: learned[level] for level in levels},
                            output / "baselines", address, resume=resume, callbacks=callbacks)


def search_row(level: str, search: str, budget: str, r: RunResult) -> dict[str, Any]:
    p = r.population
    return {"level": level, "search": search, "budget": budget,
            "ceiling SR": p.ceiling.SR, "ceiling PD": p.ceiling.PD,
            "SR": p.SR, "PD": p.PD, "ECR_gap": p.ECR_gap, "gower_chosen": p.gower_chosen,
            "model_calls": sum(s.model_calls for s in r.scopes.values()),
            "train_s": max(s.train_s for s in r.scopes.values()), "wall_s": r.wall_s}


# --------------------------------------------------------------------- RESULTS.md
def markdown_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    return "\n".join([header, rule, *("| " + " | ".join(str(v) for v in row) + " |"
                                      for row in shown.itertuples(index=False))])


def markdown(dataset: str, table: pd.DataFrame, searches: pd.DataFrame, base: RunConfig) -> str:
    t = base.train
    budget = ("each scope stops when its goal is met and its best set stops improving "
              f"({base.search.patience:,} steps), or after {base.search.stall:,} steps without "
              "improvement")
    if t.time_budget_s or t.env_steps:
        budget += (f", and at most {t.time_budget_s:g} s" if t.time_budget_s else "") + \
            (f", {t.env_steps:,} steps" if t.env_steps else "")
    return "\n".join([
        f"# Reproducing the paper on {dataset}",
        "",
        f"Command: `recourse reproduce --dataset {dataset}` (search: SAC, `{base.search.mdp}` "
        f"formulation; {budget}). Sets are learned on a random half of the affected people; "
        "`heldout` columns measure the same sets on the other half. `ceiling SR` is what any "
        "feasible change could reach for these people.",
        "",
        f"Reference figures of the method: {REFERENCE.get(dataset, 'none published')}.",
        "",
        "Cost of fairness: SR lost and Gower added against the unconstrained run of the same "
        "scopes (group level against `group unconstrained`, others against `individual "
        "unconstrained`).",
        "",
        markdown_table(table),
        "",
        "## The search beside the ceiling and the baselines",
        "",
        "EE-ECR (micro) at each level: the learned search, then each non-learned search given "
        "the learned one's model calls or its training time, scope by scope, on the same "
        "people.",
        "",
        markdown_table(searches),
        "",
    ])
