"""Unseen evaluation datasets: synthetic tables unlike Adult and Alzheimer, for measuring the
recourse search (ceiling, baselines, SAC) on data it was not tuned on.

Adult is flipped for everyone by one action (capital-gain +8,400) and Alzheimer by raising all
three of its continuous features, so neither tells a good search from a poor one. These are
built so that it matters: few actionable features, mixed kinds and directions, 3 and 6
protected groups with groups of under 10 affected people, people no change can flip, and
subgroups that need opposite changes. Each label is a noisy nonlinear rule a random forest
learns; every figure below is of the AFFECTED people (test rows the forest turns down, after
the 80/20 split with seed 42), printed by `main` (see "Figures" in benchmarks/README.md).

- credit (1,000 rows, 2 groups by `sex`, 2 clusters): amount (con), duration (con), savings
  (ord 0..4, increase) and checking (cat A11..A14). Easy: everyone can be flipped and one
  strong action flips them all; a sanity check that a search finds the obvious.
- justice (4,000 rows, 3 groups by `ethnicity`, C small, 3 clusters): only two actionable
  features, priors (ord 0..15, decrease) and program (cat no/yes). Hard: juvenile record,
  felony and age are immutable, so part of every group cannot be flipped and group C (more
  juvenile records and felony charges) less often: ceiling PD about 0.2. The program helps
  those without a job and hurts those with one, so no single action flips both.
- health6 (4,000 rows, 6 groups = 3 ethnicities x sex, 3 clusters): exercise (ord 0..7,
  increase), bmi (con, decrease), sleep (con, any) and diet (cat of 4). Risk has thresholds
  (bmi 30/35, exercise 3 and 5 days) and interactions: sleep is healthy in a band (short and
  long sleepers need opposite changes), diabetics need the low-carb diet and hypertensives
  the Mediterranean one. Group E3 x F has under 10 affected people.
- scale (38,000 rows, 3 groups by `age_group`, 2 clusters): debt (con, decrease), education
  (ord 0..5, increase), employment (cat of 4) and product (cat of 3); a debt-to-income
  threshold, employment x education, and products that suit only some (a secured loan needs
  a home, a co-signed one helps a short credit history). Moderate, on large scopes: about
  6,450 affected people, one cluster of 5,000.
- tinyscope (1,000 rows, 3 groups, 4 clusters of 16 to 60 affected people): hours (con, best
  in a band), training (ord 0..4, increase) and shift (cat of 3, parents do best on days, the
  others on nights): tiny scopes where the per-step overhead of the search, not the model,
  sets the speed; most clusters need 2 actions.
- housing (3,000 rows, 4 groups by `region`, islands 3 %, 3 clusters): savings (con,
  increase), late_payments (ord 0..9, decrease) and contract (cat of 4, a mortgage helps, none
  hurts). Every actionable feature is one-way or categorical, so many proposals change nobody
  in some entry (the canonical form of actions matters here); the islands start with less
  savings and the coast with more late payments.

Generate all of them (and print what preparing each gives) into FOLDER (default
benchmarks/unseen/, ignored by git):
    cd benchmarks && PYTHONPATH=.. python unseen.py [FOLDER] [--only NAME ...] [--no-check]
A benchmark script gets a run config with `config_for("justice")` (generated if missing).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from distributed_recourse.config import RunConfig
from distributed_recourse.data import Schema
from distributed_recourse.model import BlackBox
from distributed_recourse.population import prepare
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.metrics import spread

FOLDER = Path(__file__).parent / "unseen"
"""Where `main` and `config_for` write the files unless told otherwise (git ignores it)."""
DATA_SEED = 2024
"""Seeds the generated rows; the run configs' own seed (42) seeds the split, model and KMeans."""
RUN_SEED = 42


def noisy_label(risk: np.ndarray, rng: np.random.Generator, sharpness: float = 3.0) -> np.ndarray:
    """True (unfavourable) with probability sigmoid(sharpness * risk): the rule, blurred near
    its boundary so that the forest has something to learn but not a lookup table."""
    return rng.random(len(risk)) < 1.0 / (1.0 + np.exp(-sharpness * risk))


def choice(rng: np.random.Generator, values: list, p: list[float], n: int) -> np.ndarray:
    return rng.choice(np.asarray(values, dtype=object), size=n, p=p)


def write(folder: Path, name: str, frame: pd.DataFrame, schema: dict, clusters: int,
          about: str, seed: int) -> Path:
    """`<name>.csv`, `<name>.schema.yaml` (checked by the package's Schema) and the run config
    `<name>.yaml` in folder; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    Schema.from_dict(schema, name)
    csv, schema_path, config_path = (folder / f"{name}{ext}" for ext in
                                     (".csv", ".schema.yaml", ".yaml"))
    frame.to_csv(csv, index=False)
    header = f"# {about}\n# Generated by benchmarks/unseen.py (data seed {seed}); do not edit.\n"
    schema_path.write_text(header + yaml.safe_dump(schema, sort_keys=False))
    config = {
        "dataset": {"name": "csv", "path": str(csv.resolve()), "schema": str(schema_path.resolve())},
        "model": {"kind": "random_forest"},
        "population": {"clusters": clusters},
        "level": "hybrid",
        "reward": {"reward": "EE-ECR", "effectiveness": "micro", "n_actions": 4, "phi": 0.6},
        "seed": RUN_SEED,
    }
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return config_path


# --------------------------------------------------------------------------- the datasets
def credit(folder: Path, seed: int = DATA_SEED) -> Path:
    """Easy: mixed kinds, everyone reachable, one strong action flips all."""
    rng = np.random.default_rng(seed)
    n = 1000
    sex = choice(rng, ["male", "female"], [0.69, 0.31], n)
    female = sex == "female"
    age = np.clip(np.round(20 + rng.gamma(2.0, 7.0, n) - 3 * female), 19, 75).astype(int)
    employment = np.clip(np.round(rng.gamma(1.5, 3.0, n) * (1 - 0.3 * female)), 0, 30).astype(int)
    amount = np.clip(np.round(np.exp(rng.normal(7.9, 0.7, n)), -1), 250, 18000)
    duration = np.clip(np.round(6 + rng.gamma(2.0, 8.0, n) + amount / 1000), 4, 72).astype(int)
    savings = rng.choice(5, n, p=[0.45, 0.2, 0.15, 0.1, 0.1])
    checking = choice(rng, ["A11", "A12", "A13", "A14"], [0.3, 0.27, 0.08, 0.35], n)
    purpose = choice(rng, ["car", "furniture", "education", "business"], [0.35, 0.3, 0.15, 0.2], n)
    effect = pd.Series(checking).map({"A11": 1.4, "A12": 0.5, "A13": -0.5, "A14": -0.9}).to_numpy()
    risk = (-1.1 + 1.2 * amount / 4000 + duration / 24 - 0.55 * savings + effect
            - 0.015 * (age - 35) - 0.04 * employment + 0.3 * (purpose == "business"))
    bad = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "age": age, "sex": sex, "employment_years": employment, "purpose": purpose,
        "amount": amount, "duration": duration, "savings": savings, "checking": checking,
        "credit": np.where(bad, "bad", "good"),
    })
    schema = {
        "name": "credit", "label": "credit", "favourable": "good",
        "protected": {"column": "sex"},
        "actionable": [
            {"name": "amount", "kind": "con", "low": 250, "high": 18000},
            {"name": "duration", "kind": "con", "low": 4, "high": 72},
            {"name": "savings", "kind": "ord", "low": 0, "high": 4, "direction": "increase"},
            {"name": "checking", "kind": "cat"},
        ],
        "categorical": ["sex", "purpose"],
    }
    return write(folder, "credit", frame, schema, 2, "credit: easy, mixed kinds, 2 groups", seed)


def justice(folder: Path, seed: int = DATA_SEED) -> Path:
    """Two actionable features, people no change flips, unequal reachability."""
    rng = np.random.default_rng(seed)
    n = 4000
    ethnicity = choice(rng, ["A", "B", "C"], [0.56, 0.37, 0.07], n)
    in_c, in_b = ethnicity == "C", ethnicity == "B"
    age = np.clip(np.round(18 + rng.gamma(2.2, 7.0, n)), 18, 70).astype(int)
    employed = (rng.random(n) < 0.55 - 0.05 * in_c).astype(int)
    juvenile = np.clip(rng.poisson(0.6 + 0.2 * in_b + 0.5 * in_c), 0, 6)
    offense = np.where(rng.random(n) < 0.35 + 0.2 * in_c, "felony", "misdemeanor")
    priors = np.clip(rng.poisson(3.0 + 0.5 * in_b + 0.02 * (age - 18)), 0, 15)
    program = choice(rng, ["no", "yes"], [0.6, 0.4], n)
    # The (full-time) program helps those without a job and gets in the way of a job.
    program_effect = np.where(employed == 1, 1.2, -1.5) * (program == "yes")
    risk = (-1.5 + 0.3 * priors + 0.7 * juvenile + 0.9 * (offense == "felony")
            - 0.03 * (age - 30) - 0.6 * employed + program_effect)
    high = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "age": age, "ethnicity": ethnicity, "employed": employed, "juvenile": juvenile,
        "offense": offense, "priors": priors, "program": program,
        "risk": np.where(high, "high", "low"),
    })
    schema = {
        "name": "justice", "label": "risk", "favourable": "low",
        "protected": {"column": "ethnicity"},
        "actionable": [
            {"name": "priors", "kind": "ord", "low": 0, "high": 15, "direction": "decrease"},
            {"name": "program", "kind": "cat"},
        ],
        "categorical": ["ethnicity", "offense"],
    }
    return write(folder, "justice", frame, schema, 3,
                 "justice: two actionable features, unequal reachability, 3 groups", seed)


def health6(folder: Path, seed: int = DATA_SEED) -> Path:
    """Six groups, thresholds and interactions that need distinct actions."""
    rng = np.random.default_rng(seed)
    n = 4000
    ethnicity = choice(rng, ["E1", "E2", "E3"], [0.62, 0.33, 0.05], n)
    female = rng.random(n) < np.where(ethnicity == "E3", 0.3, 0.5)
    sex = np.where(female, "F", "M")
    age = np.clip(np.round(rng.normal(52, 14, n)), 25, 85).astype(int)
    diabetic = (rng.random(n) < 0.12 + 0.004 * (age - 50).clip(0)).astype(int)
    hypertensive = (rng.random(n) < 0.2 + 0.006 * (age - 45).clip(0)).astype(int)
    family = (rng.random(n) < 0.25).astype(int)
    bmi = np.round(np.clip(rng.normal(27.5 + 2 * diabetic, 4.5, n), 16, 45), 1)
    exercise = rng.choice(8, n, p=[0.22, 0.14, 0.14, 0.14, 0.12, 0.1, 0.07, 0.07])
    sleep = np.round(np.clip(rng.normal(7.3, 1.4, n), 3, 11), 1)
    diet = choice(rng, ["standard", "mediterranean", "low_carb", "plant"], [0.45, 0.2, 0.2, 0.15], n)
    # Each condition has its diet: diabetics low-carb, (other) hypertensives Mediterranean.
    wrong_diet = np.where(diabetic == 1, diet != "low_carb",
                          (hypertensive == 1) & (diet != "mediterranean"))
    risk = (-1.2 + 0.03 * (age - 50) + 0.6 * diabetic + 0.5 * hypertensive + 0.5 * family
            + 1.0 * (bmi > 30) + 0.6 * (bmi > 35) + 1.0 * (exercise < 3) - 0.5 * (exercise >= 5)
            + 1.4 * ((sleep < 6) | (sleep > 9.5)) + 1.6 * wrong_diet - 0.2 * (diet == "plant"))
    high = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "age": age, "ethnicity": ethnicity, "sex": sex, "diabetic": diabetic,
        "hypertensive": hypertensive, "family_history": family, "bmi": bmi,
        "exercise": exercise, "sleep": sleep, "diet": diet,
        "outcome": np.where(high, "high_risk", "low_risk"),
    })
    schema = {
        "name": "health6", "label": "outcome", "favourable": "low_risk",
        "protected": {"columns": ["ethnicity", "sex"]},
        "actionable": [
            {"name": "exercise", "kind": "ord", "low": 0, "high": 7, "direction": "increase"},
            {"name": "bmi", "kind": "con", "low": 16, "high": 45, "direction": "decrease"},
            {"name": "sleep", "kind": "con", "low": 3, "high": 11},
            {"name": "diet", "kind": "cat"},
        ],
        "categorical": ["ethnicity", "sex"],
    }
    return write(folder, "health6", frame, schema, 3,
                 "health6: 6 groups (one under 10 affected), thresholds and interactions", seed)


def scale(folder: Path, seed: int = DATA_SEED) -> Path:
    """Scopes of thousands; products that suit only some applicants."""
    rng = np.random.default_rng(seed)
    n = 38_000
    age_group = choice(rng, ["18-30", "31-50", "51+"], [0.3, 0.45, 0.25], n)
    young, old = age_group == "18-30", age_group == "51+"
    history = np.clip(np.round(rng.gamma(2.0, 4.0, n) + 8 * old - 3 * young), 0, 40).astype(int)
    dependents = rng.choice(5, n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    region = choice(rng, ["north", "south", "east", "west"], [0.3, 0.3, 0.2, 0.2], n)
    home_owner = (rng.random(n) < 0.25 + 0.3 * old - 0.15 * young).astype(int)
    # Two income populations: KMeans on the raw features splits on income.
    high_earner = rng.random(n) < 0.3
    income = np.round(np.clip(np.where(high_earner, rng.normal(95, 15, n), rng.normal(38, 10, n)),
                              8, 200), 1)
    debt = np.round(np.clip(income * rng.gamma(2.0, 0.22, n), 0, 150), 1)
    education = rng.choice(6, n, p=[0.1, 0.3, 0.25, 0.2, 0.1, 0.05])
    employment = choice(rng, ["unemployed", "part_time", "full_time", "self_employed"],
                        [0.12, 0.23, 0.5, 0.15], n)
    product = choice(rng, ["unsecured", "secured", "cosigned"], [0.6, 0.25, 0.15], n)
    ratio = debt / income
    short_history = history < 5
    job_effect = np.select([employment == "unemployed", employment == "part_time",
                            (employment == "self_employed") & (education >= 3),
                            employment == "self_employed"], [1.3, 0.5, -0.6, 0.6], 0.0)
    # A secured loan needs a home to secure it; a co-signer helps those with a short history.
    product_effect = np.select(
        [product == "secured", product == "cosigned"],
        [np.where(home_owner == 1, -1.2, 1.5), np.where(short_history, -1.0, 0.3)],
        0.6 * short_history)
    risk = (0.4 + 2.0 * (ratio > 0.4) + 0.8 * (ratio > 0.7) - 0.02 * (income - 40)
            - 0.25 * education + job_effect + product_effect + 0.25 * dependents
            + 0.3 * (region == "east"))
    rejected = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "age_group": age_group, "region": region, "home_owner": home_owner,
        "credit_history": history, "dependents": dependents, "income": income, "debt": debt,
        "education": education, "employment": employment, "product": product,
        "approved": np.where(rejected, "no", "yes"),
    })
    schema = {
        "name": "scale", "label": "approved", "favourable": "yes",
        "protected": {"column": "age_group"},
        "actionable": [
            {"name": "debt", "kind": "con", "low": 0, "high": 150, "direction": "decrease"},
            {"name": "education", "kind": "ord", "low": 0, "high": 5, "direction": "increase"},
            {"name": "employment", "kind": "cat"},
            {"name": "product", "kind": "cat"},
        ],
        "categorical": ["age_group", "region"],
    }
    return write(folder, "scale", frame, schema, 2, "scale: scopes of thousands, 4 actionable features", seed)


def tinyscope(folder: Path, seed: int = DATA_SEED) -> Path:
    """Scopes of 16 to 60 people, where search overhead sets the speed."""
    rng = np.random.default_rng(seed)
    n = 1000
    group = choice(rng, ["G1", "G2", "G3"], [0.5, 0.33, 0.17], n)
    # Four sites far apart on tenure: KMeans on the raw features finds one cluster per site.
    site = rng.choice(4, n, p=[0.36, 0.3, 0.27, 0.07])
    tenure = np.clip(np.round(np.array([10, 60, 120, 190])[site] + rng.normal(0, 6, n)), 0, 240)
    parent = (rng.random(n) < 0.4).astype(int)
    hours = np.round(np.clip(rng.normal(36, 9, n), 5, 60), 1)
    training = rng.choice(5, n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    shift = choice(rng, ["day", "evening", "night"], [0.5, 0.3, 0.2], n)
    # Parents do best on the day shift, the others on nights; 32 to 45 hours is the sweet spot.
    shift_effect = np.where(parent == 1, np.where(shift == "day", -0.9, 0.5),
                            np.where(shift == "night", -0.9, np.where(shift == "day", 0.3, 0.0)))
    risk = (0.7 + 1.1 * (hours < 32) + 1.2 * (hours > 45) - 0.25 * training + shift_effect
            - 0.003 * tenure + 0.4 * (group == "G3"))
    passed_over = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "group": group, "tenure": tenure, "parent": parent, "hours": hours,
        "training": training, "shift": shift, "promoted": np.where(passed_over, "no", "yes"),
    })
    schema = {
        "name": "tinyscope", "label": "promoted", "favourable": "yes",
        "protected": {"column": "group"},
        "actionable": [
            {"name": "hours", "kind": "con", "low": 5, "high": 60},
            {"name": "training", "kind": "ord", "low": 0, "high": 4, "direction": "increase"},
            {"name": "shift", "kind": "cat"},
        ],
        "categorical": ["group"],
    }
    return write(folder, "tinyscope", frame, schema, 4, "tinyscope: 4 clusters of 16 to 60 people", seed)


def housing(folder: Path, seed: int = DATA_SEED) -> Path:
    """Four regions, one tiny; every actionable feature one-way or categorical."""
    rng = np.random.default_rng(seed)
    n = 3000
    region = choice(rng, ["north", "south", "coast", "islands"], [0.45, 0.35, 0.17, 0.03], n)
    age = rng.integers(21, 75, n)
    dependents = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    # Islanders save less, the coast has more late payments: the groups start unequal.
    savings = np.round(np.clip(rng.lognormal(8.5, 1.0, n) * np.where(region == "islands", 0.5, 1.0),
                               0, 60000))
    late = np.clip(rng.poisson(np.where(region == "coast", 2.5, 1.2)), 0, 9)
    contract = choice(rng, ["rent", "mortgage", "none", "family"], [0.4, 0.3, 0.2, 0.1], n)
    risk = (0.2 - 0.00012 * savings + 0.55 * late + 0.3 * dependents - 0.01 * (age - 40)
            + np.select([contract == "mortgage", contract == "none"], [-0.9, 0.8], 0.0))
    denied = noisy_label(risk, rng)
    frame = pd.DataFrame({
        "age": age, "region": region, "dependents": dependents, "savings": savings,
        "late_payments": late, "contract": contract,
        "decision": np.where(denied, "deny", "approve"),
    })
    schema = {
        "name": "housing", "label": "decision", "favourable": "approve",
        "protected": {"column": "region"},
        "actionable": [
            {"name": "savings", "kind": "con", "low": 0, "high": 60000, "direction": "increase"},
            {"name": "late_payments", "kind": "ord", "low": 0, "high": 9, "direction": "decrease"},
            {"name": "contract", "kind": "cat"},
        ],
        "categorical": ["region"],
    }
    return write(folder, "housing", frame, schema, 3, "housing: 4 regions, one tiny; one-way features",
                 seed)


DATASETS: dict[str, Callable[..., Path]] = {
    f.__name__: f for f in (credit, justice, health6, scale, tinyscope, housing)
}


def config_for(name: str, folder: str | Path = FOLDER) -> RunConfig:
    """The run config of dataset `name` in folder, generating its files first if missing."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    folder = Path(folder)
    paths = [folder / f"{name}{ext}" for ext in (".csv", ".schema.yaml", ".yaml")]
    if not all(p.is_file() for p in paths):
        DATASETS[name](folder)
    return RunConfig.from_yaml(paths[2])


# --------------------------------------------------------------------------- checking them
def reachable(model: BlackBox, X: np.ndarray, con_points: int = 9,
              chunk_rows: int = 200_000) -> np.ndarray:
    """Per person (row of X): does any feasible change of the actionable features flip them?

    Tries every combination of per-feature values (each feature kept, or set to one of its
    ord/cat values or to one of `con_points` grid values of a con feature) that its direction
    allows. Exact without con features, a lower bound with them. A check of this file's
    claims, not the product's ceiling (issue 9)."""
    features = model.space.actionable
    columns = [f.column for f in features]
    options = []
    for f in features:
        values = (np.linspace(f.low, f.high, con_points) if f.kind == "con"
                  else np.arange(np.ceil(f.low), np.floor(f.high) + 1))
        options.append(np.concatenate([[np.nan], values]))  # NaN: keep the person's value
    grid = np.array(list(itertools.product(*options)))
    increase = np.array([f.direction == "increase" for f in features])
    decrease = np.array([f.direction == "decrease" for f in features])
    out = np.zeros(len(X), dtype=bool)
    step = max(1, chunk_rows // len(grid))
    for start in range(0, len(X), step):
        people = X[start:start + step]
        current = np.repeat(people[:, columns], len(grid), axis=0)
        target = np.tile(grid, (len(people), 1))
        target = np.where(np.isnan(target), current, target)
        feasible = ((~increase | (target >= current)) & (~decrease | (target <= current))).all(axis=1)
        moved = np.repeat(people, len(grid), axis=0)[feasible]
        moved[:, columns] = target[feasible]
        flipped = np.zeros(len(feasible), dtype=bool)
        flipped[feasible] = model(moved)
        out[start:start + step] = flipped.reshape(len(people), len(grid)).any(axis=1)
    return out


def single_actions(model: BlackBox, X: np.ndarray, con_points: int = 9, limit: int = 600,
                   seed: int = RUN_SEED) -> np.ndarray:
    """(actions, people) flipped by each shared action of a grid (at most `limit` of them, a
    seeded sample): what one action of a set can do for a whole scope."""
    space = ActionSpace(model.space.actionable, 1)
    low, high = space.value_bounds()
    options = []
    for i, f in enumerate(space.features):
        if f.kind == "con":
            options.append(np.unique(np.concatenate([[0.0], np.linspace(low[i], high[i], con_points)])))
        else:
            options.append(np.concatenate([[space.sentinel[i]],
                                           np.arange(space.clip_low[i], space.clip_high[i] + 1)]))
    actions = np.array(list(itertools.product(*options)))
    if len(actions) > limit:
        actions = actions[np.random.default_rng(seed).choice(len(actions), limit, replace=False)]
    return np.array([model(space.apply(X, a)) for a in actions])


def shares(mask: np.ndarray, groups: np.ndarray, names: list[str]) -> dict[str, float]:
    return {name: float(mask[groups == g].mean()) for g, name in enumerate(names)
            if (groups == g).any()}


def check(config: RunConfig, max_people: int = 1500) -> None:
    """Prepare the dataset with the package's pipeline and print what the search faces: the
    affected people and clusters, a lower bound of the ceiling (reachable by some feasible
    change, or by one of the grid's shared actions), and per cluster how much the best single
    shared action and a greedy cover with N (`reward.n_actions`) of them flip. Past
    `max_people` affected people, all but the first two are estimated on a seeded sample."""
    started = time.perf_counter()
    prepared = prepare(config)
    s, p = prepared.summary, prepared.population
    print(f"{s['dataset']}: {s['n_rows']} rows, {s['n_test']} test, model accuracy "
          f"{s['model']['accuracy']:.3f}; affected {s['affected']['n']}: {s['affected']['groups']}")
    for scope, info in s["clusters"].items():
        print(f"  {scope}: {info['n']} {info['groups']}")
    sample = np.arange(len(p.X))
    if len(sample) > max_people:
        sample = np.sort(np.random.default_rng(config.seed).choice(sample, max_people, replace=False))
        print(f"  (ceiling and actions estimated on a sample of {max_people} affected people)")
    X, groups, clusters = p.X[sample], p.groups[sample], p.clusters[sample]
    flipped = single_actions(prepared.model, X)
    reach = reachable(prepared.model, X) | flipped.any(axis=0)
    ceiling = shares(reach, groups, p.group_names)
    values = np.array(list(ceiling.values()))
    print(f"  ceiling: SR {values.mean():.3f}, PD {spread(values):.3f}, "
          f"per group {', '.join(f'{k} {v:.3f}' for k, v in ceiling.items())}")
    for c in range(p.n_clusters):
        scope = flipped[:, clusters == c]
        covered, picks = np.zeros(scope.shape[1], dtype=bool), 0
        while picks < config.reward.n_actions and (scope & ~covered).any():  # greedy cover
            covered |= scope[(scope & ~covered).sum(axis=1).argmax()]
            picks += 1
        print(f"  cluster-{c}: reachable {reach[clusters == c].mean():.3f}, best single grid "
              f"action {scope.mean(axis=1).max():.3f}, greedy {picks} actions {covered.mean():.3f}")
    print(f"  ({time.perf_counter() - started:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=FOLDER,
                        help=f"where to write <name>.csv, .schema.yaml and .yaml (default {FOLDER})")
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="these datasets only")
    parser.add_argument("--no-check", action="store_true", help="write the files, skip preparing")
    args = parser.parse_args(argv)
    for name in args.only or DATASETS:
        path = DATASETS[name](Path(args.folder))
        print(f"wrote {path}", flush=True)
        if not args.no_check:
            check(RunConfig.from_yaml(path))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
