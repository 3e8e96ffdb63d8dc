"""The run report: a train run folder built without Ray (the prepared tiny Alzheimer population,
a summary from `train.summarize`, a small archive) turned into report.md, report.html and plots;
and the readable action text."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from distributed_recourse.cli import main
from distributed_recourse.config import ConfigError
from distributed_recourse.population import prepare
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import archive_entry
from distributed_recourse.recourse.describe import actions_text
from distributed_recourse.report import write_report
from distributed_recourse.train import summarize, write_outputs

PNG = b"\x89PNG\r\n\x1a\n"
FINAL = [{"MMSE": 4.4}, {"FunctionalAssessment": 3.0, "ADL": 2.5}, {"MMSE": 10.0, "ADL": 5.0}, {}]


def archived(prepared, config, space, scope: str, changes: list[dict], step: int) -> dict:
    """An archive entry as the environment stores it, measured on the scope alone."""
    people = prepared.population.scope(scope)
    state = np.array([space.from_description(c) for c in changes])
    outcome = M.evaluate_set(space, people.X, state, prepared.model.favourable)
    k, w = len(people.group_names), config.reward
    distinct = space.distinct(state)
    tally = M.tally(outcome.flipped, people.groups, k, distinct, w.phi)
    share = M.share_per_action(M.action_effectiveness(outcome.flipped, people.groups, k),
                               tally.people)
    active = M.active_actions(w.active_rule, outcome.flipped, share, distinct, w.phi,
                              w.macro_active)
    metrics = M.set_metrics(tally, w.effectiveness, active, outcome.gower.mean(axis=1))
    entry = archive_entry(scope, space, state, metrics, tally, people.group_names, step, 1000.0)
    return {**entry, "elapsed_s": step / 50}


@pytest.fixture(scope="module")
def runs(tiny_config, tmp_path_factory):
    """Two train run folders on one prepared population (some people held out from the search):
    one with an archive, one without."""
    config = replace(tiny_config, population=replace(tiny_config.population, holdout=True))
    prepared = prepare(config)
    space = ActionSpace(prepared.model.space.actionable, tiny_config.reward.n_actions)
    scopes = prepared.population.scope_names(tiny_config.level)
    trials = {name: {"env_steps": 600, "time_s": 12.0} for name in scopes}
    weaker = [{"MMSE": 4.4}, {}, {}, {}]
    snapshot = {"archive": {
        "cluster-0": [archived(prepared, config, space, "cluster-0", weaker, 150),
                      archived(prepared, config, space, "cluster-0", FINAL, 420)],
        "cluster-1": [archived(prepared, config, space, "cluster-1", FINAL, 300)],
    }}
    found, empty = tmp_path_factory.mktemp("found"), tmp_path_factory.mktemp("empty")
    for folder, snap in ((found, snapshot), (empty, {"archive": {}, "best_seen": {}})):
        prepared.save(folder)
        summary = summarize(config, prepared, scopes, snap, trials, 30.0)
        write_outputs(folder, summary, snap)
    return found, empty


def test_train_report_reads_without_opening_json(runs):
    found, _ = runs
    path = write_report(found)
    assert path == found / "report.md"
    md = path.read_text()
    summary = json.loads((found / "summary.json").read_text())
    p = summary["population"]
    valid = round(p["validity"] * p["n"])
    assert f"Under hybrid fairness, {100 * p['validity']:.1f}% of the {p['n']} affected people" in md
    rates = {g: v["effectiveness"] for g, v in p["groups"].items()}
    assert f"differs by {100 * p['PD']:.1f} points between" in md
    assert all(f"{name} ({100 * rate:.1f}%)" in md for name, rate in rates.items())
    # con changes read as changes, one action per table row, with who it works for
    assert "| 1 | MMSE +4.4 |" in md
    assert "| 2 | FunctionalAssessment +3; ADL +2.5 |" in md
    assert "| 4 | no change |" in md
    assert "picked from 2 successful sets" in md and "picked from 1 successful set)" in md
    assert "| cluster-0 | 2 | 150 |" in md  # progress: two archived sets, the first at step 150
    held = summary["heldout"]
    assert f"On the {held['n']} affected people held out from the search" in md
    assert f"| held-out people | {held['n']} | {100 * held['SR']:.1f}% |" in md
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


def test_summary_keeps_what_reading_actions_needs(runs):
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["features"] == {name: {"kind": "con", "direction": "any"}
                                   for name in ("FunctionalAssessment", "ADL", "MMSE")}


def test_empty_archive_says_nothing_was_archived(runs, tiny_config):
    _, empty = runs
    md = write_report(empty).read_text()
    assert "Nothing was archived" in md
    goal = f"SR ≥ {tiny_config.reward.done_sr:g} and PD ≤ {tiny_config.reward.done_pd:g}"
    assert f"No successful set ({goal}) was found for cluster-0 and cluster-1" in md
    assert "no successful set: the best set seen" in md
    assert not (empty / "plots" / "progress.png").exists()
    assert (empty / "report.html").is_file()


def test_cli_report(runs, tmp_path, capsys):
    found, _ = runs
    (found / "plots" / "stale.png").parent.mkdir(exist_ok=True)
    (found / "plots" / "stale.png").write_bytes(PNG)
    assert main(["report", "--run", str(found)]) == 0
    assert "report.md" in capsys.readouterr().out
    assert not (found / "plots" / "stale.png").exists()
    assert main(["report", "--run", str(tmp_path)]) == 2
    assert "holds no run results" in capsys.readouterr().err
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
