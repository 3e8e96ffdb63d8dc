"""Built-in datasets (Adult, Alzheimer, SSL) and any CSV/Parquet file with a schema.

Every loader ends in `finish`: the config's row filter (`where`), then `Schema.validate`, so
every dataset is checked the same way and reports the rows it dropped.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distributed_recourse.data.schema import (
    FeatureSpace,
    Schema,
    SchemaError,
    missing_column,
    value_key,
)

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
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}
"""The delimiters `detect_sep` chooses among, by the name its errors give them."""
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
HEAD_BYTES = 1 << 16
Where = Mapping[str, Any]
"""Column -> the values a kept row takes there (a list, or one value)."""


@dataclass
class Dataset:
    """A validated table, its schema, the model's feature space, and what loading dropped."""

    schema: Schema
    frame: pd.DataFrame
    space: FeatureSpace
    source: str
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows removed, by reason (`where`, `missing`, `duplicate`, ...)."""

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
    where: Where | None = None,
) -> Dataset:
    """Filter the rows (`where`), validate, optionally de-duplicate, and fix the feature space."""
    dropped = dict(dropped or {})
    if where:
        raw, dropped["where"] = keep_where(raw, where, source)
    frame, missing = schema.validate(raw, source)
    dropped["missing"] = missing
    if drop_duplicates:
        unique = frame.drop_duplicates().reset_index(drop=True)
        dropped["duplicate"] = len(frame) - len(unique)
        frame = unique
    return Dataset(schema, frame, schema.feature_space(frame), source, rows_read, dropped)


def keep_where(frame: pd.DataFrame, where: Where, source: str) -> tuple[pd.DataFrame, int]:
    """The rows whose columns take one of the given values (compared as `value_key`, as group
    maps compare them; a missing value matches none), and how many were removed. A column
    the data lacks, a value it never takes (a typo) and a filter that keeps no row are errors."""
    keep = np.ones(len(frame), dtype=bool)
    for column, values in where.items():
        if column not in frame.columns:
            raise missing_column(column, list(frame.columns), source, "(in `dataset.where`) ")
        wanted = {value_key(v) for v in (values if isinstance(values, (list, tuple)) else [values])}
        keys = frame[column].map(value_key)
        absent = sorted(wanted - set(keys))
        if absent:
            raise SchemaError(f"{source}: dataset.where: column {column!r} never takes the values "
                              f"{absent}; its values: {sorted(set(keys))[:20]}")
        keep &= keys.isin(wanted).to_numpy()
    if not keep.any():
        raise SchemaError(f"{source}: dataset.where {dict(where)} keeps no row")
    return frame[keep].reset_index(drop=True), int((~keep).sum())


def read_table(path: Path, sep: str | None = None) -> pd.DataFrame:
    """CSV (optionally compressed) or Parquet, by extension. A CSV's delimiter is `sep`, or
    detected from the file's head (`detect_sep`); a space means any run of spaces (aligned
    columns). A CSV that reads as a single column is an error naming the likely delimiter."""
    if not path.exists():
        raise SchemaError(f"data file {path} does not exist")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes:
            return pd.read_parquet(path)
        sep = sep or detect_sep(path)
        frame = pd.read_csv(path, sep=r"\s+" if sep == " " else sep, skipinitialspace=True,
                            low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise SchemaError(f"data file {path} could not be read as a table: {error}") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        likely = header_sep(header, exclude=sep)
        hint = (f"; it looks {DELIMITERS[likely]}-delimited: set dataset.sep: {json.dumps(likely)}"
                if likely else "; set dataset.sep to its delimiter")
        raise SchemaError(f"data file {path} reads as a single column ({header[:60]!r}) with the "
                          f"delimiter {json.dumps(sep)}{hint}")
    return frame


def detect_sep(path: Path) -> str:
    """The delimiter of a CSV file: `csv.Sniffer` on its first lines, among `DELIMITERS`;
    failing that the delimiter most frequent in its header; failing that a comma."""
    lines = text_head(path).splitlines()[:100]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return header_sep(lines[0] if lines else "") or ","


def header_sep(header: str, exclude: str | None = None) -> str | None:
    """The delimiter (other than `exclude`) that occurs most in a header line, if any does."""
    counts = {d: header.count(d) for d in DELIMITERS if d != exclude}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else None


def text_head(path: Path) -> str:
    """The complete lines in the first `HEAD_BYTES` of a text file, gzip, bzip2, xz or zip
    compressed or not; empty if it cannot be read so (the caller falls back to a comma)."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive, archive.open(archive.namelist()[0]) as file:
                data = file.read(HEAD_BYTES)
        else:
            with OPENERS.get(path.suffix.lower(), open)(path, "rb") as file:
                data = file.read(HEAD_BYTES)
    except (OSError, EOFError, IndexError, lzma.LZMAError, zipfile.BadZipFile):
        return ""
    text = data.decode("utf-8", errors="replace")
    return text.rsplit("\n", 1)[0] if len(data) == HEAD_BYTES else text


def load_adult(data_dir: Path | None = None, where: Where | None = None) -> Dataset:
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
    return finish(raw, builtin_schema("adult"), str(folder), len(raw), drop_duplicates=True,
                  where=where)


def load_alzheimer(
    path: Path | None = None, sep: str | None = None, where: Where | None = None
) -> Dataset:
    path = Path(path) if path else Path(str(FILES / "alzheimers_disease_data.csv"))
    raw = read_table(path, sep)
    return finish(raw, builtin_schema("alzheimer"), str(path), len(raw), where=where)


def load_ssl(
    path: Path | str | None, sep: str | None = None, where: Where | None = None
) -> Dataset:
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
    raw = read_table(path, sep)
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
        dropped={"race_not_studied": int(other_race.sum())}, where=where,
    )


def load_table(
    path: Path | str, schema: Schema | Path | str, sep: str | None = None,
    where: Where | None = None,
) -> Dataset:
    """Any CSV or Parquet file with a schema (a Schema or a YAML path)."""
    if not isinstance(schema, Schema):
        schema = Schema.from_yaml(schema)
    path = Path(path)
    raw = read_table(path, sep)
    return finish(raw, schema, str(path), len(raw), where=where)


def load_dataset(
    name: str, path: str | Path | None = None, schema: str | Path | None = None,
    sep: str | None = None, where: Where | None = None,
) -> Dataset:
    """One entry point for configs and the CLI (the options of `DatasetConfig`; Adult's UCI
    files have a fixed format, so `sep` does not apply to them)."""
    if name == "adult":
        return load_adult(path, where)
    if name == "alzheimer":
        return load_alzheimer(path, sep, where)
    if name == "ssl":
        return load_ssl(path, sep, where)
    if name == "csv":
        if path is None or schema is None:
            raise SchemaError("dataset `csv` needs both `path` (CSV/Parquet) and `schema` (YAML)")
        return load_table(path, schema, sep, where)
    raise SchemaError(f"unknown dataset {name!r}; expected one of {BUILTIN}")
