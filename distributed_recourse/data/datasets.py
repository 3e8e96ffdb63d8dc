"""Built-in datasets (Adult, Alzheimer, SSL) and any CSV/Parquet file with a schema.

Every loader ends in `Schema.validate`, so every dataset is checked the same way and reports
the rows it dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from distributed_recourse.data.schema import FeatureSpace, Schema, SchemaError, value_key

FILES = resources.files("distributed_recourse.data") / "files"
SCHEMAS = resources.files("distributed_recourse.data") / "schemas"

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
SSL_SCORE = "SSL SCORE"
SSL_FAVOURABLE_BELOW = 345
SSL_COLUMNS = [
    SSL_SCORE,
    "PREDICTOR RAT AGE AT LATEST ARREST",
    "PREDICTOR RAT VICTIM SHOOTING INCIDENTS",
    "PREDICTOR RAT VICTIM BATTERY OR ASSAULT",
    "PREDICTOR RAT ARRESTS VIOLENT OFFENSES",
    "PREDICTOR RAT GANG AFFILIATION",
    "PREDICTOR RAT NARCOTIC ARRESTS",
    "PREDICTOR RAT TREND IN CRIMINAL ACTIVITY",
    "PREDICTOR RAT UUW ARRESTS",
    "SEX CODE CD",
    "RACE CODE CD",
]
BUILTIN = ("adult", "alzheimer", "ssl", "csv")


@dataclass
class Dataset:
    """A validated table, its schema, the model's feature space, and what loading dropped."""

    schema: Schema
    frame: pd.DataFrame
    space: FeatureSpace
    source: str
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows removed, by reason (`missing`, `duplicate`, ...)."""

    @property
    def X(self) -> np.ndarray:
        return self.space.encode(self.frame, self.source)

    @property
    def favourable(self) -> np.ndarray:
        """y: True where the label is the favourable value."""
        return label_is_favourable(self.frame[self.schema.label], self.schema)

    @property
    def groups(self) -> pd.Series:
        return self.schema.protected.labels(self.frame)

    def report(self) -> dict:
        return {"source": self.source, "rows_read": self.rows_read, "rows": len(self.frame),
                "dropped": dict(self.dropped)}


def label_is_favourable(labels: pd.Series, schema: Schema) -> np.ndarray:
    return (labels.map(value_key) == value_key(schema.favourable)).to_numpy()


def builtin_schema(name: str) -> Schema:
    return Schema.from_yaml(Path(str(SCHEMAS / f"{name}.yaml")))


def finish(
    raw: pd.DataFrame, schema: Schema, source: str, rows_read: int,
    dropped: dict[str, int] | None = None, drop_duplicates: bool = False,
) -> Dataset:
    """Validate, optionally de-duplicate, and fix the feature space."""
    frame, missing = schema.validate(raw, source)
    dropped = {**(dropped or {}), "missing": missing}
    if drop_duplicates:
        unique = frame.drop_duplicates().reset_index(drop=True)
        dropped["duplicate"] = len(frame) - len(unique)
        frame = unique
    return Dataset(schema, frame, schema.feature_space(frame), source, rows_read, dropped)


def read_table(path: Path) -> pd.DataFrame:
    """CSV (optionally compressed) or Parquet, by extension."""
    if not path.exists():
        raise SchemaError(f"data file {path} does not exist")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes:
            return pd.read_parquet(path)
        return pd.read_csv(path, skipinitialspace=True, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise SchemaError(f"data file {path} could not be read as a table: {error}") from None


def load_adult(data_dir: Path | None = None) -> Dataset:
    """The UCI files (train + test) together; `?` is missing; the test labels' `.` stripped;
    missing and duplicate rows dropped (45,175 rows remain, as in the paper)."""
    folder = Path(data_dir) if data_dir else Path(str(FILES))
    options = dict(names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    parts = []
    for name, skip in (("adult.data", 0), ("adult.test", 1)):
        path = folder / name
        if not path.exists():
            raise SchemaError(f"Adult file {path} does not exist")
        parts.append(pd.read_csv(path, skiprows=skip, **options))
    raw = pd.concat(parts, ignore_index=True)
    raw["income"] = raw["income"].str.rstrip(".")
    return finish(raw, builtin_schema("adult"), str(folder), len(raw), drop_duplicates=True)


def load_alzheimer(path: Path | None = None) -> Dataset:
    path = Path(path) if path else Path(str(FILES / "alzheimers_disease_data.csv"))
    raw = read_table(path)
    return finish(raw, builtin_schema("alzheimer"), str(path), len(raw))


def load_ssl(path: Path | str | None) -> Dataset:
    """FlipTest's `chicago-ssl-clean.csv` or the data portal's
    `Strategic_Subject_List_-_Historical.csv` (optionally gzipped), prepared as FACTS does:
    WBH counts as BLK and WWH as WHI, codes U and X are missing, races I and API are left out."""
    if path is None or not Path(path).exists():
        raise SchemaError(
            f"the SSL dataset is not shipped; pass its file with --data PATH (given: {path}). "
            "Expected FlipTest's chicago-ssl-clean.csv or the Chicago data portal export "
            "Strategic_Subject_List_-_Historical.csv(.gz)"
        )
    path = Path(path)
    raw = read_table(path)
    missing = [c for c in SSL_COLUMNS if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{path}: not an SSL file, columns {missing} are missing "
            "(expected the columns of chicago-ssl-clean.csv or of the portal export)"
        )
    raw = raw[SSL_COLUMNS].copy()
    rows_read = len(raw)
    race = raw["RACE CODE CD"].replace({"WBH": "BLK", "WWH": "WHI"})
    codes = raw[["SEX CODE CD"]].assign(race=race)
    unknown = codes.isin(["U", "X"]).any(axis=1)
    raw["RACE CODE CD"] = race
    raw.loc[unknown, ["SEX CODE CD", "RACE CODE CD"]] = np.nan
    other_race = raw["RACE CODE CD"].isin(["I", "API"])
    raw = raw[~other_race]
    score = pd.to_numeric(raw[SSL_SCORE], errors="coerce")
    raw = raw.assign(risk=np.where(score < SSL_FAVOURABLE_BELOW, "low", "high"))
    raw.loc[score.isna(), "risk"] = np.nan
    raw = raw.drop(columns=[SSL_SCORE])
    return finish(
        raw, builtin_schema("ssl"), str(path), rows_read,
        dropped={"race_not_studied": int(other_race.sum())},
    )


def load_table(path: Path | str, schema: Schema | Path | str) -> Dataset:
    """Any CSV or Parquet file with a schema (a Schema or a YAML path)."""
    if not isinstance(schema, Schema):
        schema = Schema.from_yaml(schema)
    path = Path(path)
    raw = read_table(path)
    return finish(raw, schema, str(path), len(raw))


def load_dataset(
    name: str, path: str | Path | None = None, schema: str | Path | None = None
) -> Dataset:
    """One entry point for configs and the CLI."""
    if name == "adult":
        return load_adult(path)
    if name == "alzheimer":
        return load_alzheimer(path)
    if name == "ssl":
        return load_ssl(path)
    if name == "csv":
        if path is None or schema is None:
            raise SchemaError("dataset `csv` needs both `path` (CSV/Parquet) and `schema` (YAML)")
        return load_table(path, schema)
    raise SchemaError(f"unknown dataset {name!r}; expected one of {BUILTIN}")
