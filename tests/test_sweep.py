"""Sweeps: the search-space file, the objective, the Pareto front, and a real short Tune sweep."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.report import write_report
from distributed_recourse.sweep import SweepSpec, objective, pareto_front, sweep, with_value

ROOT = Path(__file__).parent.parent


def test_pareto_front_keeps_only_undominated_trials():
    trials = pd.DataFrame({
        "SR": [0.90, 0.95, 0.80, 0.95, 0.70],
        "PD": [0.05, 0.02, 0.01, 0.03, 0.00],
        "gower_chosen": [0.10, 0.10, 0.20, 0.10, 0.30],
    })
    # row 0 is beaten by row 1 (higher SR, lower PD, same Gower); row 3 by row 1 (same SR,
    # higher PD); rows 1, 2 and 4 each win on something
    assert list(pareto_front(trials).index) == [1, 2, 4]


def test_objective_is_the_weighted_sum_of_population_figures():
    population = {"SR": 0.9, "PD": 0.1, "ECR_gap": 0.25, "gower_chosen": 0.2}
    weights = {"SR": 1.0, "PD": -1.0, "ECR_gap": -1.0, "gower_chosen": -0.5}
    assert objective(population, weights) == pytest.approx(0.9 - 0.1 - 0.25 - 0.1)
    assert objective({**population, "gower_chosen": None}, weights) == pytest.approx(0.05)


def test_with_value_sets_a_dotted_key_and_validates_it():
    config = with_value(RunConfig(), "reward.pd", 2.5)
    assert config.reward.pd == 2.5
    assert with_value(config, "population.clusters", 5).population.clusters == 5
    with pytest.raises(ConfigError, match="pdd"):
        with_value(config, "reward.pdd", 1.0)
    with pytest.raises(ConfigError, match="rewards"):
        with_value(config, "rewards.pd", 1.0)


def test_sweep_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "sweep.yaml"
    bad.write_text(yaml.safe_dump({"search": {"reward.pd": {"between": [0, 1]}}}))
    with pytest.raises(ConfigError, match="reward.pd"):
        SweepSpec.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"search": {"reward.nope": {"grid": [1]}}}))
    with pytest.raises(ConfigError, match="nope"):
        SweepSpec.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"serach": {}}))
    with pytest.raises(ConfigError, match="serach"):
        SweepSpec.from_yaml(bad)


def test_shipped_sweeps_parse():
    quick = SweepSpec.from_yaml(ROOT / "tune_configs" / "quick_sweep.yaml")
    assert len(quick.search) == 2
    adult = SweepSpec.from_yaml(ROOT / "tune_configs" / "adult_sweep.yaml")
    assert adult.base.dataset.name == "adult" and adult.scheduler


def test_a_short_sweep_writes_trials_pareto_and_a_trainable_best_config(ray_session, tmp_path):
    spec = SweepSpec.from_yaml(ROOT / "tune_configs" / "quick_sweep.yaml")
    spec.base = with_value(with_value(spec.base, "train.env_steps", 100),
                           "train.steps_per_iteration", 50)
    spec.search = {"reward.pd": {"grid": [0.5, 2.0]}}
    spec.rounds_per_report = 1
    trials = sweep(spec, tmp_path, verbose=0)
    assert len(trials) == 2
    assert sorted(trials["param:reward.pd"]) == [0.5, 2.0]
    for path in trials["path"]:  # every finished trial leaves its run files
        assert {"summary.json", "archive.csv", "stats.json"} <= {p.name for p in Path(path).iterdir()}
    assert trials["objective"].is_monotonic_decreasing
    for column in ("SR", "PD", "ECR_gap", "gower_chosen"):
        assert trials[column].notna().all()
    report = write_report(tmp_path).read_text()
    assert "Pareto" in report and (tmp_path / "plots" / "sweep.png").stat().st_size > 0
    front = pd.read_csv(tmp_path / "pareto.csv")
    assert 1 <= len(front) <= 2
    best = RunConfig.from_yaml(tmp_path / "best.yaml")
    assert best.reward.pd == trials.iloc[0]["param:reward.pd"]
    assert best.dataset.name == "alzheimer"
