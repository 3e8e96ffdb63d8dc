"""Run configuration: one YAML file (the shipped ones are in configs/) read into typed,
documented dataclasses.

Unknown keys are errors that name the section and the key, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distributed_recourse.recourse.rewards import RewardWeights

LEVELS = ("individual", "group", "hybrid")
SEARCHES = ("sac", "random", "greedy")
MDPS = ("proposal", "reference")
MODELS = ("random_forest", "logistic_regression", "gradient_boosting", "mlp", "file")


SHIPPED = resources.files("distributed_recourse") / "configs"
"""The run and sweep configs that ship in the package (`recourse configs` lists them)."""


class ConfigError(ValueError):
    """A config file or option that is not what is expected."""


def shipped_configs() -> dict[str, Path]:
    """Name (file stem) -> path of every config shipped in the package."""
    return {Path(str(p)).stem: Path(str(p)) for p in SHIPPED.iterdir() if p.name.endswith(".yaml")}


def config_path(name_or_path: str | Path) -> Path:
    """A config file: the path if it exists, else the shipped config of that name (`adult`
    or `adult.yaml`), so that `--config adult` works from any folder."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_configs()
    name = path.name.removesuffix(".yaml") if path.parent == Path(".") else None
    if name in shipped:
        return shipped[name]
    raise ConfigError(f"config file {name_or_path} does not exist, and no shipped config has "
                      f"that name (shipped: {', '.join(sorted(shipped))})")


@dataclass
class DatasetConfig:
    name: str = "adult"
    """`adult`, `alzheimer` (both shipped), `ssl` (needs `path`) or `csv` (needs `path`, `schema`)."""
    path: str | None = None
    """Data file, for `ssl` and `csv` (CSV or Parquet)."""
    schema: str | None = None
    """Schema YAML, for `csv`; its `features` (columns to keep), `drop` and per-feature
    `labels` (readable names of codes) are documented in `data/schema.py`."""
    sep: str | None = None
    """Delimiter of a CSV file (`csv`, `ssl`, `alzheimer`; not Adult's fixed UCI files): one
    character, e.g. `";"` or `"\\t"` (YAML reads a tab so in double quotes only); a space means
    any run of spaces (aligned columns). None detects it from the file's head among comma,
    semicolon, tab, pipe and space."""
    where: dict[str, Any] = field(default_factory=dict)
    """Keep only the rows whose columns take the given values, e.g.
    `{race: [African-American, Caucasian]}` (one value needs no list). Values compare as
    text, `1.0` as `1`, as a schema's group maps do; it applies to the file's columns before
    the schema keeps or drops any. The rows removed are counted as `where` among the dropped
    rows of population.json's data report; a column the file lacks, a value it never takes
    and a filter that keeps no row are errors."""


@dataclass
class ModelConfig:
    kind: str = "random_forest"
    """`random_forest` (the paper's), `logistic_regression`, `gradient_boosting`, `mlp`, or
    `file` to load a user's fitted model."""
    params: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the scikit-learn estimator, over the paper's defaults."""
    path: str | None = None
    """For `file`: a pickled/joblib model with `predict` (and ideally `predict_proba`)."""
    input: str = "frame"
    """For `file`: does the model read a pandas frame of the raw feature columns (`frame`)
    or the encoded numeric matrix (`matrix`)?"""
    favourable_output: Any = None
    """For `file`: the prediction that means favourable; default the schema's favourable value."""
    test_size: float = 0.2
    """Share of rows held out (stratified); the affected people come from this split."""


@dataclass
class PopulationConfig:
    clusters: int = 3
    """KMeans clusters of the affected people (k)."""
    standardize: bool = False
    """Cluster on standardised features (the reference clusters raw features)."""
    max_affected: int | None = None
    """Keep at most this many affected people (a seeded sample), for quick runs and tests."""
    holdout: bool = False
    """Search on a random half of the affected people and also measure the final sets on the
    other half (`heldout` in summary.json); the paper measures in-sample only."""


@dataclass
class SearchConfig:
    """How each scope is searched, and when a scope is done."""

    kind: str = "sac"
    """`sac` (RLlib SAC, the method) or a non-learned baseline at the same model calls:
    `random` (uniform candidates) or `greedy` (coordinate hill climbing)."""
    mdp: str = "proposal"
    """SAC's formulation: `proposal` (a step proposes a whole action; an episode builds a set)
    or `reference` (the paper's: a step moves one entry of the set, DESIGN.md section 4)."""
    goal_share: float = 0.98
    """A set meets the goal when its SR is at least this share of the ceiling's SR..."""
    goal_pd_margin: float = 0.01
    """...and its PD at most the ceiling's PD plus this margin..."""
    goal_pd_floor: float = 0.02
    """...or this floor, whichever is larger (ECR rewards also need equal choice)."""
    goal_sr: float | None = None
    """A fixed SR target instead of the ceiling's share (`mdp: reference`: the reward's `done_sr`)."""
    goal_pd: float | None = None
    """A fixed PD bound instead (`mdp: reference`: the reward's `done_pd`)."""
    patience: int = 200
    """A scope whose goal is met stops once its best set has not improved for this many steps."""
    stall: int = 3000
    """A scope stops once its best set has not improved for this many steps, goal met or not."""
    pool_size: int = 4096
    """Candidate actions kept per scope for the exact set search (the least useful are dropped)."""
    keep_share: float = 0.6
    """A proposed (or random) action changes each feature with this probability at the start."""
    resolution: int = 100
    """`con` changes are proposed on a grid of this many steps per feature range."""
    jump_share: float = 0.25
    """SAC's proposals start as a fresh action anywhere with this probability, and as a move
    of one entry of the slot's action otherwise."""
    warm_start: bool = True
    """SAC starts from the coordinate search's (`greedy`) result: that search runs until a set
    first meets the goal (or `warm_calls`), then SAC improves on it. The run records the hand-over
    set, so that what the learning adds stays visible."""
    warm_calls: int | None = None
    """At most this many model calls for the warm start; None: 25 per entry of a set (N x m)."""


@dataclass
class SacSettings:
    """RLlib SAC hyperparameters; defaults are the reference's where it has them."""

    actor_hidden: list[int] = field(default_factory=lambda: [32, 64, 64, 128])
    """Policy network layers."""
    critic_hidden: list[int] = field(default_factory=lambda: [200, 150, 100])
    """Q network layers."""
    batch_size: int = 256
    buffer_size: int = 1_000_000
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    tau: float = 0.005
    gamma: float = 0.99
    rollout_fragment_length: int = 8
    """Steps each of the `num_envs` episodes takes between gradient updates (one update per
    rollout_fragment_length x num_envs steps; the reference updates every step). An update
    costs ~12 ms, more than a small scope's steps: 8 x 16 episodes reached 416 steps/s on a
    50-person scope where 4 x 8 reached 238 (benchmarks/env_step.py)."""
    learning_starts: int = 256
    """Random-policy steps before learning (RLlib's default 1500 wastes short budgets)."""
    num_envs: int = 16
    """Proposal episodes a trainer steps at once; their proposals share one model call
    (`mdp: reference` steps one environment)."""
    training_intensity: float | None = None
    """Replayed steps trained on per step sampled; None: one update per
    `rollout_fragment_length` x `num_envs` steps. `batch_size` (one update per step, the
    reference's rate) is where the policy's learning shows within a few hundred model calls,
    at 11 to 12 times the training time (docs/RESULTS.md): worth it when model calls are dear."""


def check_budget(name: str, budget: Any) -> None:
    """A budget is a number, or a mapping of scope names to numbers."""
    values = budget.values() if isinstance(budget, dict) else [budget]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values
           if v is not None):
        raise ConfigError(f"train.{name}: expected a number >= 0 or {{scope: number}}, "
                          f"got {budget!r}")


@dataclass
class TrainConfig:
    env_steps: int | None = None
    """At most this many steps (proposals) per scope; None leaves it to the stop rules of
    `search` (the reference ran 40,000)."""
    max_model_calls: int | dict[str, int] | None = None
    """Stop a scope once the model has been asked about this many actions: one number for
    every scope, or one per scope name (comparisons of searches at equal model calls give each
    scope the calls the learned search spent on it)."""
    time_budget_s: float | dict[str, float] | None = None
    """Stop a scope after this many seconds of training even if its stop rule has not fired
    (one number, or one per scope name)."""
    stop_archived: int | None = None
    """Stop a scope once this many distinct successful sets are archived."""
    steps_per_iteration: int = 128
    """At most this many steps per scope per round (the first rounds are shorter): every round
    the scopes sync their tallies through the statistics actor, the run reports its progress
    and the stop rules are checked."""
    checkpoint_every_s: float = 30.0
    """Seconds between checkpoints of the trainers and the statistics actor (and at the end)."""
    cpus_per_trainer: float | None = None
    """CPUs each scope's trainer owns; None shares the cluster's CPUs evenly among the scopes
    so that all train at once (hybrid needs it). A forest model predicts with that many threads."""
    resources_per_trainer: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources each trainer asks for. One trainer per node: start each worker
    node with `ray start --resources='{"trainer_slot": 1}'` and set `{trainer_slot: 1}` here."""
    stats_actor_resources: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources the central statistics actor asks for. Without them it lives on
    the driver's node, where it writes OUTPUT/stats.json; with them, on a node that has them
    (that node must reach OUTPUT, e.g. a shared mount)."""
    storage: str | None = None
    """Where Ray Tune keeps the trials and checkpoints: an absolute path every node can reach
    or a URI such as `s3://bucket/runs/adult`; None keeps them in OUTPUT/tune. The summary
    files are written to OUTPUT on the driver either way."""
    max_failures: int = 3
    """Times a failed trainer is restarted from its last checkpoint."""
    shards: int = 1
    """Split each scope's people over this many Ray actors (a scope too large for one process)."""
    shard_resources: dict[str, float] = field(default_factory=dict)
    """Ray resources of each shard actor (default one CPU), e.g. `{shard_slot: 1}`."""
    minimize: bool = True
    """Reduce each final action exactly before measuring it: drop the changes nobody it flips
    needs, shrink the rest to the smallest that keeps every flip (recourse/minimize.py)."""
    selection: str = "sr_minus_pd"
    """How the final set of a scope is picked among its sets that meet the goal: `sr_minus_pd`
    (highest SR - PD, ties by the smaller ECR gap, then the cheapest chosen counterfactuals),
    `gower` (lowest Gower of the active actions), `cost` (the cheapest chosen
    counterfactuals) or `plausibility` (the most plausible ones).
    Under hybrid fairness the scopes' sets are chosen together, for the population's SR - PD."""

    def __post_init__(self) -> None:
        for name in ("max_model_calls", "time_budget_s"):
            check_budget(name, getattr(self, name))


@dataclass
class ServeConfig:
    """`recourse serve`: the HTTP application's replicas and limits (the command's options
    `--replicas` and `--max-rows` override)."""

    min_replicas: int = 1
    """Autoscaling bounds: Serve adds replicas while each has more than
    `target_ongoing_requests` requests in hand, and removes them down to `min_replicas`."""
    max_replicas: int = 2
    target_ongoing_requests: float = 8.0
    replica_cpus: float = 1.0
    """CPUs each replica reserves."""
    alternatives: int = 2
    """Next-best flipping actions answered per person, as `recourse explain --alternatives`."""
    max_rows: int = 1_000
    """Rows one request may carry (more: HTTP 413)."""
    max_body_bytes: int = 2 * 2**20
    """Bytes one request body may carry (more: HTTP 413)."""
    batch_rows: int = 512
    """Rows of concurrent requests a replica explains in one go (`@serve.batch`)."""
    batch_wait_s: float = 0.0
    """How long a replica waits for more requests to join a batch; even without waiting, the
    requests that arrive while one batch is explained form the next."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError(f"serve: expected 1 <= min_replicas <= max_replicas, got "
                              f"{self.min_replicas} and {self.max_replicas}")
        for name in ("max_rows", "max_body_bytes", "batch_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class RunConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    level: str = "hybrid"
    """`individual` (a set per cluster), `group` (one set for all), `hybrid` (a set per
    cluster, group terms over the whole population)."""
    reward: RewardWeights = field(default_factory=RewardWeights)
    search: SearchConfig = field(default_factory=SearchConfig)
    sac: SacSettings = field(default_factory=SacSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    seed: int = 42
    """Seeds the split, the model, the clustering, the environments and SAC."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigError(f"level {self.level!r}, expected one of {LEVELS}")
        if self.model.kind not in MODELS:
            raise ConfigError(f"model.kind {self.model.kind!r}, expected one of {MODELS}")
        from distributed_recourse.recourse.archive import SELECTION_RULES

        if self.train.selection not in SELECTION_RULES:
            raise ConfigError(f"train.selection {self.train.selection!r}, expected one of "
                              f"{SELECTION_RULES}")
        if self.search.kind not in SEARCHES:
            raise ConfigError(f"search.kind {self.search.kind!r}, expected one of {SEARCHES}")
        if self.search.mdp not in MDPS:
            raise ConfigError(f"search.mdp {self.search.mdp!r}, expected one of {MDPS}")
        sep = self.dataset.sep
        if sep is not None and not (isinstance(sep, str) and len(sep) == 1):
            raise ConfigError(f'dataset.sep must be one character such as ";" (a tab: "\\t" in '
                              f"double quotes), got {sep!r}")
        for column, values in self.dataset.where.items():
            if values is None or isinstance(values, dict) or values == []:
                raise ConfigError(f"dataset.where.{column}: expected the values to keep (a list, "
                                  f"or one value), got {values!r}")
        if self.population.clusters < 1:
            raise ConfigError(f"population.clusters must be at least 1, got {self.population.clusters}")
        storage = self.train.storage
        if storage and "://" not in storage and not Path(storage).is_absolute():
            raise ConfigError(f"train.storage must be an absolute path or a URI such as "
                              f"s3://bucket/path, got {storage!r}")

    @property
    def scopes_use_clusters(self) -> bool:
        return self.level != "group"

    @classmethod
    def from_dict(cls, spec: dict[str, Any], source: str = "config") -> RunConfig:
        spec = dict(spec or {})
        sections = {f.name: f for f in fields(cls)}
        unknown = set(spec) - set(sections)
        if unknown:
            raise ConfigError(f"{source}: unknown sections {sorted(unknown)}; known: {sorted(sections)}")
        kwargs: dict[str, Any] = {}
        for name, value in spec.items():
            if name == "reward":
                try:
                    kwargs[name] = RewardWeights.from_dict(value)
                except (TypeError, ValueError) as error:
                    raise ConfigError(f"{source}: reward: {error}") from None
            elif name in ("dataset", "model", "population", "search", "sac", "train", "serve"):
                kwargs[name] = section(sections[name].default_factory, value, f"{source}: {name}")
            else:
                kwargs[name] = value
        try:
            return cls(**kwargs)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        path = config_path(path)
        try:
            spec = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
        return cls.from_dict(spec, str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def section(factory, values: dict[str, Any] | None, where: str):
    """Build one config section, naming any unknown key or value of the wrong type."""
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of options, got {values!r}")
    default = factory()
    known = {f.name for f in fields(default)}
    unknown = set(values or {}) - known
    if unknown:
        raise ConfigError(f"{where}: unknown options {sorted(unknown)}; known: {sorted(known)}")
    for key, value in (values or {}).items():
        expected = getattr(default, key)
        if expected is not None and value is not None and not same_kind(expected, value):
            raise ConfigError(
                f"{where}.{key}: expected {type(expected).__name__}, got {value!r}"
            )
    return type(default)(**{**asdict(default), **(values or {})})


def same_kind(default: Any, value: Any) -> bool:
    """Numbers are interchangeable (not with booleans); lists and tuples too."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))
