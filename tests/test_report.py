"""The run report: a train run folder built without Ray (the prepared tiny Alzheimer population,
a hub that recorded a few rounds, the RunResult `engine.summarize` measures from its snapshot)
turned into report.md, report.html and plots; the end-of-run table; the readable action text."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import run_files

from distributed_recourse.cli import main
from distributed_recourse.config import ConfigError
from distributed_recourse.population import Prepared, prepare
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.describe import actions_text
from distributed_recourse.report import headline, pct, summary_table, write_report
from distributed_recourse.result import SUMMARY, RunResult

PNG = b"\x89PNG\r\n\x1a\n"
FINAL = [{"MMSE": 4.4}, {"FunctionalAssessment": 3.0, "ADL": 2.5}, {"MMSE": 10.0, "ADL": 5.0}, {}]
WEAKER = [{"MMSE": 4.4}, {}, {}, {}]


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory):
    """Two train run folders on one prepared population (some people held out from the search):
    one with an archive, one without."""
    config = replace(tiny_config, population=replace(tiny_config.population, holdout=True))
    prepared = prepare(config)
    space = ActionSpace(prepared.model.space.actionable, tiny_config.reward.n_actions)
    # everyone in the tiny population is reachable; as if the ceiling had found two people of
    # cluster-0's first group that FINAL does not flip unreachable, so that scope, group and
    # population ceilings differ
    population = prepared.population
    scope = population.scope("cluster-0")
    flipped = M.evaluate_set(space, scope.X, np.array([space.from_description(c) for c in FINAL]),
                             prepared.model.favourable).flipped.any(axis=0)
    unreachable = np.flatnonzero(population.members("cluster-0"))[
        np.flatnonzero(~flipped & (scope.groups == 0))[:2]]
    assert len(unreachable) == 2
    population.reachable[unreachable] = False

    def entry(scope, changes, step, met=True):
        return run_files.entry(prepared, config, scope, changes, step, met)

    weaker0, final0 = entry("cluster-0", WEAKER, 150), entry("cluster-0", FINAL, 420)
    final1 = entry("cluster-1", FINAL, 300)
    found, empty = tmp_path_factory.mktemp("found"), tmp_path_factory.mktemp("empty")
    results = {
        "found": run_files.run_folder(found, config, prepared, {
            "cluster-0": [(weaker0, [weaker0]), (final0, [final0])],
            "cluster-1": [(final1, [final1]), (final1, [])]}),
        "empty": run_files.run_folder(empty, config, prepared, {
            "cluster-0": [(entry("cluster-0", WEAKER, 150, met=False), [])],
            "cluster-1": [(entry("cluster-1", WEAKER, 150, met=False), [])]}),
    }
    return found, empty, results, config


def test_train_report_reads_without_opening_json(runs):
    found, _, results, _ = runs
    result = results["found"]
    path = write_report(found)
    assert path == found / "report.md"
    md = path.read_text()
    p = result.population
    valid = round(p.validity * p.n)
    assert f"Under hybrid fairness, {pct(p.validity)} of the {p.n} affected people" in md
    rates = {g: v.effectiveness for g, v in p.groups.items()}
    assert f"differs by {100 * p.PD:.1f} points between" in md
    assert all(f"{name} ({pct(rate)})" in md for name, rate in rates.items())
    # con changes read as changes, one action per table row, with who it works for
    assert "| 1 | MMSE +4.4 |" in md
    assert "| 2 | FunctionalAssessment +3; ADL +2.5 |" in md
    assert "| 4 | no change |" in md
    assert "picked from 2 successful sets" in md and "picked from 1 successful set)" in md
    # progress: two archived sets, the first at step 150 after 130 model calls
    assert "| cluster-0 | 2 | 150 | 130 |" in md and "| cluster-1 | 1 | 300 | 280 |" in md
    assert "Every scope found sets meeting its goal" in md
    held = result.heldout
    assert f"On the {held.n} affected people held out from the search" in md
    assert f"| held-out people | {held.n} | {pct(held.SR)} |" in md
    # the re-evaluated people agree with the summary's exact evaluation
    distances = md.split("## How far people have to go")[1].split("\n## ")[0]
    rows = [line for line in distances.splitlines() if line.startswith(("| Female |", "| Male |"))]
    assert len(rows) == 2 and sum(int(row.split("|")[3]) for row in rows) == valid

    plots = ["effectiveness", "choice", "gower", "progress"]
    for name in plots:
        png = found / "plots" / f"{name}.png"
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000
        assert f"(plots/{name}.png)" in md
    page = (found / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(plots)
    assert "MMSE +4.4" in page and "plots/" not in page  # self-contained


def test_the_report_shows_each_success_rate_beside_the_ceiling(runs):
    found, _, results, _ = runs
    result = results["found"]
    md = write_report(found).read_text()
    p = result.population
    assert f"The success rate is {pct(p.SR)} of a reachable {pct(p.ceiling.SR)}" in md
    assert "a lower bound" not in md  # the tiny population's ceiling is exact
    population = Prepared.load(found).population
    assert p.ceiling.SR < 1.0
    assert result.scopes["cluster-0"].ceiling.SR < 1.0 == result.scopes["cluster-1"].ceiling.SR
    for name, s in result.scopes.items():  # per scope: SR, then the ceiling's
        assert f"| {name} | {s.n:,} | {pct(s.SR)} | {pct(s.ceiling.SR)} |" in md
        own = population.ceiling(population.members(name))
        assert (s.ceiling.SR, s.ceiling.PD, s.ceiling.groups) == (own["SR"], own["PD"], own["groups"])
        for group, g in s.groups.items():
            assert g.ceiling == s.ceiling.groups[group]
    assert f"| population | {p.n:,} | {pct(p.SR)} | {pct(p.ceiling.SR)} |" in md
    # per group and scope: "p of reachable"
    effectiveness = md.split("## Effectiveness per group")[1].split("\n## ")[0]
    for group in p.groups:
        cells = [f"{pct(s.groups[group].effectiveness)} of {pct(s.groups[group].ceiling)}"
                 for s in [*result.scopes.values(), p]]
        assert f"| {group} | " + " | ".join(cells) + " |" in effectiveness
    # the end-of-run table: "SR 0.85 of a reachable 0.87", every scope and the population
    table = summary_table(result)
    for name, s in result.scopes.items():
        line = next(row for row in table.splitlines() if row.startswith(name))
        assert f"{s.SR:.3f} of {s.ceiling.SR:.3f}" in line
    line = next(row for row in table.splitlines() if row.startswith("population"))
    assert f"{p.SR:.3f} of {p.ceiling.SR:.3f}" in line
    # a ceiling that is only a lower bound says so
    cut = replace(result, population=replace(p, ceiling=replace(p.ceiling, exact=False)))
    assert "(a lower bound: the search for it was cut short)" in headline(
        cut, runs[3])


def test_the_run_result_is_typed_and_read_back_as_written(runs):
    found, empty, results, config = runs
    for folder, name in ((found, "found"), (empty, "empty")):
        assert RunResult.load(folder) == results[name]
    result = results["found"]
    assert result.features == {name: {"kind": "con", "direction": "any"}
                               for name in ("FunctionalAssessment", "ADL", "MMSE")}
    assert set(result.scopes) == {"cluster-0", "cluster-1"}
    assert sum(s.n for s in result.scopes.values()) == result.population.n
    for s in result.scopes.values():
        assert s.met_goal and s.steps == 600 and s.model_calls == 500 and s.train_s == 12.0
        assert s.steps_per_s == pytest.approx(50.0) and s.stop_reason == "step budget"
        assert len(s.actions) == len(s.set) == config.reward.n_actions
    assert [s.archived for s in result.scopes.values()] == [2, 1]
    assert result.search == "sac/proposal" and result.level == "hybrid"
    as_run = {**config.to_dict(), "train": {**config.to_dict()["train"], "minimize": False}}
    assert result.config == as_run and result.errors == []
    # the best set seen stands in for a scope that found no successful set
    assert all(not s.met_goal and s.archived == 0 for s in results["empty"].scopes.values())
    assert results["empty"].scopes["cluster-0"].actions[0] == {"MMSE": 4.4}
    # another schema version is refused by name
    data = json.loads((found / SUMMARY).read_text())
    with pytest.raises(ValueError, match="summary schema version 1"):
        RunResult.from_dict({**data, "schema_version": 1})


def test_empty_archive_says_nothing_was_archived(runs):
    _, empty, _, _ = runs
    md = write_report(empty).read_text()
    assert "Nothing was archived" in md
    assert ("No set meeting the goal was found for cluster-0 and cluster-1; the actions shown "
            "there are the best set seen during the search") in md
    assert "no successful set: the best set seen" in md
    # the goal the scopes had: from the ceiling (mdp: proposal)
    assert "SR ≥ 98% of the ceiling's SR and PD ≤ the ceiling's PD + 0.01 (at least 0.02)" in md
    assert not (empty / "plots" / "progress.png").exists()
    assert (empty / "report.html").is_file()


def test_cli_report(runs, tmp_path, capfd):
    found = runs[0]
    (found / "plots" / "stale.png").parent.mkdir(exist_ok=True)
    (found / "plots" / "stale.png").write_bytes(PNG)
    assert main(["report", "--run", str(found)]) == 0
    assert "report.md" in capfd.readouterr().out
    assert not (found / "plots" / "stale.png").exists()
    assert main(["report", "--run", str(tmp_path)]) == 2
    assert "holds no run results" in capfd.readouterr().err  # errors go to the real stderr
    with pytest.raises(ConfigError, match="prepared population"):
        shutil.copy(found / "summary.json", tmp_path / "summary.json")
        write_report(tmp_path)


def test_sweep_and_reproduce_folders_render_what_they_hold(tmp_path):
    trials = pd.DataFrame({"param:reward.pd": [0.5, 1.0, 2.0], "path": ["/tmp/t0", "/t1", "/t2"],
                           "objective": [0.2, 0.6, 0.4], "SR": [0.9, 0.85, 0.7],
                           "PD": [0.2, 0.05, 0.01], "ECR_gap": [0.0, 0.25, 0.0],
                           "gower_chosen": [0.1, 0.12, 0.2], "error": [None, None, None]})
    trials.to_csv(tmp_path / "trials.csv", index=False)
    trials.iloc[[0, 2]].to_csv(tmp_path / "pareto.csv", index=False)
    pd.DataFrame({"experiment": ["hybrid EE-ECR micro"], "SR": [0.971]}).to_csv(
        tmp_path / "results.csv", index=False)
    (tmp_path / "RESULTS.md").write_text(
        "# Reproducing the paper on adult\n\nReproduced within 2 points.\n\n"
        "| experiment | SR |\n|---|---|\n| hybrid EE-ECR micro | 0.971 |\n")
    md = write_report(tmp_path).read_text()
    assert "## Sweep" in md and "## Reproduction" in md
    assert "| reward.pd | objective | SR | PD | ECR_gap | gower_chosen |" in md  # no path, no error
    assert "2 trials no other trial beats" in md
    trials_table = md.split("### Trials")[1]
    assert trials_table.index("| 1.000 | 0.600 |") < trials_table.index("| 2.000 | 0.400 |")
    assert "### Reproducing the paper on adult" in md and "Reproduced within 2 points." in md
    assert md.count("| hybrid EE-ECR micro | 0.971 |") == 1
    assert (tmp_path / "plots" / "sweep.png").read_bytes().startswith(PNG)


def test_actions_text_reads_changes_targets_and_categories():
    features = {
        "capital-gain": {"kind": "con", "direction": "any"},
        "hours-per-week": {"kind": "con", "direction": "any"},
        "education-num": {"kind": "ord", "direction": "increase"},
        "level": {"kind": "ord", "direction": "any"},
        "debt": {"kind": "ord", "direction": "decrease"},
        "housing": {"kind": "cat", "direction": "any", "categories": ["free", "own", "rent"]},
    }
    actions = [{"capital-gain": 8700.0, "hours-per-week": 2.0}, {"education-num": 13.0},
               {"level": 3.0, "housing": 1.0}, {}, {"hours-per-week": -1.5, "debt": 2.0},
               {"capital-gain": 12345.6, "hours-per-week": 0.25}]
    assert actions_text(actions, features) == (
        "capital-gain +8,700; hours-per-week +2 | education-num at least 13 | "
        "level → 3; housing → own | no change | hours-per-week -1.5; debt at most 2 | "
        "capital-gain +12,346; hours-per-week +0.25"
    )
