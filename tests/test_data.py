"""Loaders against the shipped files and a synthetic SSL sample; a CSV/Parquet file with a
schema; and every bad input turned into an error that names the column, file or option."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ssl_sample

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.data.datasets import (
    load_adult,
    load_alzheimer,
    load_dataset,
    load_ssl,
    load_table,
)
from distributed_recourse.data.schema import Protected, Schema, SchemaError


# ---------------------------------------------------------------- Adult
@pytest.fixture(scope="module")
def adult():
    return load_adult()


def test_adult_rows_and_drops(adult):
    assert adult.rows_read == 32_561 + 16_281 == 48_842
    assert len(adult.frame) == 45_175
    assert adult.dropped == {"missing": 3_620, "duplicate": 47}
    assert adult.report() == {
        "source": adult.source,
        "rows_read": 48_842,
        "rows": 45_175,
        "dropped": {"missing": 3_620, "duplicate": 47},
    }


def test_adult_labels_groups_and_space(adult):
    assert "education" not in adult.frame.columns  # dropped: it repeats education-num
    assert set(adult.frame["income"]) == {"<=50K", ">50K"}  # the test file's '.' stripped
    # 11,208 of the 45,222 complete rows earn >50K; 6 of the 47 duplicates are among them
    assert int(adult.favourable.sum()) == 11_202
    assert adult.groups.value_counts().to_dict() == {"White": 38_859, "non-White": 6_316}
    space = adult.space
    assert len(space.columns) == 13 and "income" not in space.columns
    by_name = {spec.name: spec for spec in space.actionable}
    assert (by_name["capital-gain"].low, by_name["capital-gain"].high) == (0.0, 99_999.0)
    assert (by_name["hours-per-week"].low, by_name["hours-per-week"].high) == (1.0, 99.0)
    edu = by_name["education-num"]
    assert (edu.kind, edu.low, edu.high, edu.direction, edu.integer) == (
        "ord", 1.0, 16.0, "increase", True,
    )
    assert space.columns[edu.column] == "education-num"
    X = adult.X
    assert X.shape == (45_175, 13)
    assert X[:, edu.column].min() == 1 and X[:, edu.column].max() == 16
    assert space.categories["sex"] == ["Female", "Male"]


# ---------------------------------------------------------------- Alzheimer
def test_alzheimer():
    data = load_alzheimer()
    assert data.rows_read == 2_149 and len(data.frame) == 2_149
    assert data.dropped == {"missing": 0}
    assert "PatientID" not in data.frame.columns
    assert "DoctorInCharge" not in data.frame.columns
    assert data.groups.value_counts().to_dict() == {"Female": 1_088, "Male": 1_061}
    assert int(data.favourable.sum()) == 1_389  # Diagnosis 0
    assert len(data.space.columns) == 32
    assert [(s.name, s.low, s.high) for s in data.space.actionable] == [
        ("FunctionalAssessment", 0.0, 10.0),
        ("ADL", 0.0, 10.0),
        ("MMSE", 0.0, 30.0),
    ]
    assert data.X.shape == (2_149, 32)


def test_load_dataset_dispatch(tmp_path):
    assert load_dataset("alzheimer").rows_read == 2_149
    with pytest.raises(SchemaError, match="'iris'"):
        load_dataset("iris")
    with pytest.raises(SchemaError, match="`schema`"):
        load_dataset("csv", tmp_path / "x.csv")
    with pytest.raises(SchemaError, match="Adult file .*adult.data"):
        load_adult(tmp_path)


# ---------------------------------------------------------------- SSL
def expected_ssl(frame: pd.DataFrame, extra_missing=()) -> pd.DataFrame:
    """The rows the loader keeps, with the race recoded, worked out from the planted rows."""
    drop = set(extra_missing)
    for rows in ssl_sample.PLANTED.values():
        drop.update(rows)
    kept = frame.drop(index=sorted(drop)).reset_index(drop=True)
    kept["RACE CODE CD"] = kept["RACE CODE CD"].replace({"WBH": "BLK", "WWH": "WHI"})
    return kept


def check_ssl(data, frame, extra_missing=()):
    kept = expected_ssl(frame, extra_missing)
    assert data.rows_read == 300
    assert data.dropped == {
        "race_not_studied": ssl_sample.N_NOT_STUDIED,
        "missing": ssl_sample.N_MISSING + len(extra_missing),
    }
    assert len(data.frame) == 300 - 8 - 12 - len(extra_missing)
    assert "SSL SCORE" not in data.frame.columns
    assert set(data.frame["RACE CODE CD"]) == {"BLK", "WHI"}
    assert set(data.frame["SEX CODE CD"]) == {"M", "F"}
    assert list(data.frame["RACE CODE CD"]) == list(kept["RACE CODE CD"])
    assert list(data.frame["risk"]) == ["low" if s < 345 else "high" for s in kept["SSL SCORE"]]
    assert list(data.groups) == list(kept["RACE CODE CD"])
    np.testing.assert_array_equal(data.favourable, kept["SSL SCORE"].to_numpy() < 345)


def test_ssl_clean_file(tmp_path):
    path = tmp_path / "chicago-ssl-clean.csv"
    frame = ssl_sample.write_clean(path)
    assert pd.read_csv(path).shape == (300, 11)
    data = load_ssl(path)
    check_ssl(data, frame)
    # planted rows: WBH (row 22) counts as BLK, WWH (row 23) as WHI; 345 is high, 344 low
    planted = {r for rows in ssl_sample.PLANTED.values() for r in rows}
    kept_rows = [r for r in range(300) if r not in planted]
    position = {row: i for i, row in enumerate(kept_rows)}
    assert data.frame["RACE CODE CD"][position[ssl_sample.WBH_ROW]] == "BLK"
    assert data.frame["RACE CODE CD"][position[ssl_sample.WWH_ROW]] == "WHI"
    assert data.frame["risk"][position[ssl_sample.SCORE_345_ROW]] == "high"
    assert data.frame["risk"][position[ssl_sample.SCORE_344_ROW]] == "low"
    # schema: the count and trend predictors are actionable, decrease-only
    specs = {s.name: s for s in data.space.actionable}
    assert len(specs) == 7
    assert all(s.direction == "decrease" for s in specs.values())
    trend = specs["PREDICTOR RAT TREND IN CRIMINAL ACTIVITY"]
    assert (trend.kind, trend.integer) == ("con", False)
    gang = specs["PREDICTOR RAT GANG AFFILIATION"]
    assert (gang.kind, gang.low, gang.high, gang.integer) == ("ord", 0.0, 1.0, True)
    assert data.space.categories["PREDICTOR RAT AGE AT LATEST ARREST"] == sorted(ssl_sample.AGES)
    assert len(data.space.columns) == 10
    assert load_dataset("ssl", path).report()["rows"] == 280


def test_ssl_portal_export_gzipped(tmp_path):
    path = tmp_path / "Strategic_Subject_List_-_Historical.csv.gz"
    frame = ssl_sample.write_portal(path)
    with gzip.open(path, "rt") as f:
        header = f.readline()
    assert header.startswith("STRATEGIC SUBJECT,")  # really gzip, really the wide layout
    assert len(pd.read_csv(path).columns) == 18
    data = load_ssl(path)
    check_ssl(data, frame, extra_missing=ssl_sample.PORTAL_BLANK_AGE_ROWS)
    assert "HEAT SCORE" not in data.frame.columns
    assert len(data.space.columns) == 10


@pytest.mark.parametrize("given", [None, "nowhere/chicago.csv"])
def test_ssl_missing_file_names_the_expected_file(tmp_path, given):
    path = None if given is None else tmp_path / given
    with pytest.raises(SchemaError, match="chicago-ssl-clean.csv") as error:
        load_ssl(path)
    assert "--data" in str(error.value)
    with pytest.raises(SchemaError, match="Strategic_Subject_List"):
        load_dataset("ssl", path)


def test_ssl_wrong_file_names_the_missing_columns(tmp_path):
    path = tmp_path / "other.csv"
    ssl_sample.ssl_frame().drop(columns=["RACE CODE CD"]).to_csv(path, index=False)
    with pytest.raises(SchemaError, match=r"not an SSL file.*'RACE CODE CD'"):
        load_ssl(path)


# ---------------------------------------------------------------- any table with a schema
TOY_CSV = """\
id,age,sex,race,hours,edu,job,approved
1,25,F,W,40,2,clerk,yes
2,38,M,B,50,3,driver,no
3,45,F,A,20,1,clerk,no
4,52,M,W,60,4,manager,yes
5,29,F,B,35,2,driver,no
6,33,M,W,45,5,manager,yes
7,41,F,W,30,3,,no
8,60,M,A,25,1,clerk,no
"""
TOY_SCHEMA = {
    "name": "toy",
    "label": "approved",
    "favourable": "yes",
    "protected": {
        "columns": ["race", "sex"],
        "groups": {"race": {"W": "White", "*": "Other"}, "sex": {"F": "Female", "M": "Male"}},
    },
    "actionable": [
        {"name": "hours", "kind": "con", "low": 0, "high": 80},
        {"name": "edu", "kind": "ord", "low": 1, "high": 5, "direction": "increase"},
        {"name": "job", "kind": "cat"},
    ],
    "categorical": ["race", "sex"],
    "drop": ["id"],
}
TOY_YAML = textwrap.dedent(
    """\
    name: toy
    label: approved
    favourable: "yes"
    protected:
      columns: [race, sex]
      groups:
        race: {W: White, "*": Other}
        sex: {F: Female, M: Male}
    actionable:
      - {name: hours, kind: con, low: 0, high: 80}
      - {name: edu, kind: ord, low: 1, high: 5, direction: increase}
      - {name: job, kind: cat}
    categorical: [race, sex]
    drop: [id]
    """
)


@pytest.fixture
def toy(tmp_path) -> tuple[Path, Path]:
    csv = tmp_path / "toy.csv"
    csv.write_text(TOY_CSV)
    schema = tmp_path / "toy.yaml"
    schema.write_text(TOY_YAML)
    return csv, schema


def schema_with(**changes) -> Schema:
    return Schema.from_dict({**TOY_SCHEMA, **changes})


def actionable_with(name: str, **fields) -> list[dict]:
    """The toy schema's actionable list with one feature's entry replaced."""
    return [
        {"name": name, **fields} if item["name"] == name else item
        for item in TOY_SCHEMA["actionable"]
    ]


def test_csv_with_schema_yaml(toy):
    csv, schema_path = toy
    data = load_table(csv, schema_path)
    assert data.schema == Schema.from_dict(TOY_SCHEMA)
    assert data.rows_read == 8 and len(data.frame) == 7
    assert data.dropped == {"missing": 1}  # row 7 has no job
    assert list(data.frame.columns) == ["age", "sex", "race", "hours", "edu", "job", "approved"]
    assert list(data.groups) == [
        "White x Female", "Other x Male", "Other x Female", "White x Male",
        "Other x Female", "White x Male", "Other x Male",
    ]
    np.testing.assert_array_equal(data.favourable, [1, 0, 0, 1, 0, 1, 0])
    space = data.space
    assert space.columns == ["age", "sex", "race", "hours", "edu", "job"]
    assert space.categories == {
        "race": ["A", "B", "W"], "sex": ["F", "M"], "job": ["clerk", "driver", "manager"],
    }
    assert [(s.name, s.column, s.kind, s.low, s.high, s.direction, s.integer)
            for s in space.actionable] == [
        ("hours", 3, "con", 0.0, 80.0, "any", True),
        ("edu", 4, "ord", 1.0, 5.0, "increase", True),
        ("job", 5, "cat", 0.0, 2.0, "any", True),
    ]
    X = data.X
    np.testing.assert_array_equal(X[0], [25, 0, 2, 40, 2, 0])
    np.testing.assert_array_equal(X[3], [52, 1, 2, 60, 4, 2])
    back = space.decode(X)
    assert list(back["job"]) == [
        "clerk", "driver", "clerk", "manager", "driver", "manager", "clerk",
    ]
    assert list(back["hours"]) == [40.0, 50.0, 20.0, 60.0, 35.0, 45.0, 25.0]
    np.testing.assert_array_equal(space.encode(back), X)
    assert load_dataset("csv", csv, schema_path).report()["rows"] == 7


def test_parquet_with_schema(toy, tmp_path):
    csv, schema_path = toy
    parquet = tmp_path / "toy.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    from_parquet = load_table(parquet, Schema.from_dict(TOY_SCHEMA))
    from_csv = load_table(csv, schema_path)
    assert from_parquet.dropped == {"missing": 1}
    pd.testing.assert_frame_equal(from_parquet.frame, from_csv.frame, check_dtype=False)
    np.testing.assert_array_equal(from_parquet.X, from_csv.X)


def test_schema_dict_round_trip_and_space_round_trip(toy):
    schema = Schema.from_dict(TOY_SCHEMA)
    assert Schema.from_dict(schema.to_dict()) == schema
    data = load_table(toy[0], schema)
    space = type(data.space).from_dict(data.space.to_dict())
    assert space == data.space


def test_combination_protected_labels():
    frame = pd.DataFrame({"race": ["W", "B", "A"], "sex": ["F", "F", "M"]})
    protected = Schema.from_dict(TOY_SCHEMA).protected
    assert list(protected.labels(frame)) == ["White x Female", "Other x Female", "Other x Male"]
    # no map: raw values are the labels; numbers read as whole numbers
    raw = Protected(("race", "sex"))
    assert list(raw.labels(frame)) == ["W x F", "B x F", "A x M"]
    assert list(Protected(("g",)).labels(pd.DataFrame({"g": [1.0, 0.0]}))) == ["1", "0"]
    # a value without a group and no '*' entry
    strict = Protected(("race", "sex"), {"race": {"W": "White", "B": "Black"}})
    with pytest.raises(SchemaError, match=r"protected column 'race'.*\['A'\]"):
        strict.labels(frame)


# ---------------------------------------------------------------- bad input: schema and data
def test_missing_column_with_close_match_hint(toy):
    csv, _ = toy
    actionable = [{"name": "hour", "kind": "con", "low": 0, "high": 80},
                  *TOY_SCHEMA["actionable"][1:]]
    with pytest.raises(SchemaError, match=r"column 'hour' is missing; did you mean 'hours'\?"):
        load_table(csv, schema_with(actionable=actionable))
    with pytest.raises(SchemaError, match=r"column 'zzz' is missing$"):
        load_table(csv, schema_with(label="zzz"))


def test_label_not_binary(toy, tmp_path):
    path = tmp_path / "three.csv"
    path.write_text(TOY_CSV.replace("25,F,W,40,2,clerk,yes", "25,F,W,40,2,clerk,maybe"))
    with pytest.raises(SchemaError, match=r"label 'approved' must have exactly 2 values.*maybe"):
        load_table(path, toy[1])


def test_favourable_value_absent(toy, tmp_path):
    csv, _ = toy
    with pytest.raises(SchemaError, match=r"favourable value 'approve' does not occur"):
        load_table(csv, schema_with(favourable="approve"))
    # YAML reads an unquoted yes as True: the message shows what was read
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text(TOY_YAML.replace('favourable: "yes"', "favourable: yes"))
    with pytest.raises(SchemaError, match=r"favourable value True does not occur in label"):
        load_table(csv, unquoted)


def test_protected_with_one_group(toy):
    csv, _ = toy
    protected = {"column": "race", "groups": {"race": {"*": "Everyone"}}}
    with pytest.raises(SchemaError, match=r"\['race'\] has only the group \['Everyone'\]"):
        load_table(csv, schema_with(protected=protected))


def test_bounds_excluding_the_data(toy):
    csv, _ = toy
    actionable = actionable_with("hours", kind="con", low=0, high=50)
    with pytest.raises(SchemaError, match=r"'hours' has 1 values outside its bound 50"):
        load_table(csv, schema_with(actionable=actionable))
    actionable = actionable_with("edu", kind="ord", low=2, high=5)
    with pytest.raises(SchemaError, match=r"'edu' has 2 values outside its bound 2"):
        load_table(csv, schema_with(actionable=actionable))


def test_constant_actionable_feature_leaves_no_room(toy, tmp_path):
    path = tmp_path / "flat.csv"
    frame = pd.read_csv(toy[0])
    frame["hours"] = 40
    frame.to_csv(path, index=False)
    actionable = actionable_with("hours", kind="con")
    with pytest.raises(SchemaError, match=r"'hours': the data leaves no room"):
        load_table(path, schema_with(actionable=actionable))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"actionable": [{"name": "sex", "kind": "cat"}]},
         r"actionable feature 'sex' is also the protected attribute"),
        ({"actionable": [{"name": "approved", "kind": "cat"}]},
         r"actionable feature 'approved' is the label"),
        ({"protected": "approved"}, r"label 'approved' cannot be the protected attribute"),
        ({"actionable": [{"name": "hours", "kind": "continuous"}]},
         r"'hours': kind 'continuous'"),
        ({"actionable": [{"name": "hours", "kind": "con", "direction": "up"}]},
         r"'hours': direction 'up'"),
        ({"actionable": [{"name": "hours", "kind": "con", "low": 5, "high": 5}]},
         r"'hours': low 5 must be below high 5"),
        ({"actionable": [{"name": "hours", "kind": "con", "bounds": [0, 5]}]},
         r"actionable feature .*'bounds'"),
        ({"actionable": []}, r"no actionable features"),
        ({"actionable": [{"name": "edu", "kind": "ord"}, {"name": "edu", "kind": "ord"}]},
         r"actionable features repeat"),
        ({"categorials": ["race"]}, r"unknown keys \['categorials'\]"),
        ({"protected": {"groups": {}}}, r"protected needs `column` or `columns`"),
    ],
)
def test_schema_errors(changes, message):
    with pytest.raises(SchemaError, match=message):
        schema_with(**changes)


def test_schema_missing_required_keys_and_file(tmp_path):
    spec = {k: v for k, v in TOY_SCHEMA.items() if k not in ("label", "favourable")}
    with pytest.raises(SchemaError, match=r"missing required keys \['label', 'favourable'\]"):
        Schema.from_dict(spec)
    with pytest.raises(SchemaError, match=r"schema file .*nope.yaml does not exist"):
        Schema.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(SchemaError, match=r"data file .*nope.csv does not exist"):
        load_table(tmp_path / "nope.csv", Schema.from_dict(TOY_SCHEMA))


def test_unknown_keys_in_the_protected_section_are_errors():
    # a typo (`group` for `groups`) must not silently drop the group map
    protected = {"column": "race", "group": {"race": {"W": "White", "*": "Other"}}}
    with pytest.raises(SchemaError, match="'group'"):
        schema_with(protected=protected)


@pytest.mark.parametrize(
    "changes, word",
    [
        # `actionable: [hours]` instead of `[{name: hours, kind: con}]`
        ({"actionable": ["hours"]}, "'hours'"),
        # `categorical: race` instead of `[race]` (today: read as columns r, a, c, e)
        ({"categorical": "race"}, "categorical"),
        # a group map written as a list
        ({"protected": {"column": "race", "groups": {"race": ["W"]}}}, "'race'"),
    ],
)
def test_schema_entries_of_the_wrong_shape(changes, word):
    with pytest.raises(SchemaError, match=word):
        schema_with(**changes)


def test_unreadable_table(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(SchemaError, match=r"broken.parquet could not be read as a table"):
        load_table(path, Schema.from_dict(TOY_SCHEMA))


def test_non_numeric_values_in_a_numeric_column(toy, tmp_path):
    path = tmp_path / "age.csv"
    path.write_text(TOY_CSV.replace("2,38,M", "2,unknown,M"))
    with pytest.raises(SchemaError, match=r"column 'age' must be numeric.*'unknown'"):
        load_table(path, toy[1])


def test_encode_unknown_category(toy):
    space = load_table(*toy).space
    frame = pd.DataFrame(
        {"age": [30], "sex": ["F"], "race": ["W"], "hours": [40], "edu": [2], "job": ["pilot"]}
    )
    with pytest.raises(SchemaError, match=r"column 'job' has unknown categories \['pilot'\]"):
        space.encode(frame, "new.csv")
    with pytest.raises(SchemaError, match=r"new.csv: column 'edu' is missing"):
        space.encode(frame.drop(columns=["edu"]), "new.csv")


def test_decode_gives_back_integer_coded_categories_as_they_were():
    # a `frame` model (model.input: frame) reads decode's output: an integer-coded categorical
    # column must come back as the integers the model was trained on, not as strings
    frame = pd.DataFrame(
        {"y": [0, 1, 0, 1], "g": [0, 1, 1, 0], "eth": [0, 2, 1, 2], "x": [1.0, 2.0, 3.0, 4.0]}
    )
    schema = Schema.from_dict(
        {"name": "t", "label": "y", "favourable": 1, "protected": "g",
         "actionable": [{"name": "x", "kind": "con"}], "categorical": ["eth"]}
    )
    space = schema.feature_space(frame)
    assert space.categories == {"eth": ["0", "1", "2"]}
    back = space.decode(space.encode(frame))
    assert list(back["eth"]) == [0, 2, 1, 2]


def test_encode_non_numeric_value_names_the_column(toy):
    space = load_table(*toy).space
    frame = pd.DataFrame(
        {"age": ["thirty"], "sex": ["F"], "race": ["W"], "hours": [40], "edu": [2],
         "job": ["clerk"]}
    )
    with pytest.raises(SchemaError, match="'age'"):
        space.encode(frame, "new.csv")


# ---------------------------------------------------------------- bad input: run config
def test_config_unknown_section_and_option():
    with pytest.raises(ConfigError, match=r"unknown sections \['datasets'\]"):
        RunConfig.from_dict({"datasets": {"name": "adult"}})
    with pytest.raises(ConfigError, match=r"config: population: unknown options \['cluster'\]"):
        RunConfig.from_dict({"population": {"cluster": 3}})
    with pytest.raises(ConfigError, match=r"run.yaml: sac: unknown options \['lr'\]"):
        RunConfig.from_dict({"sac": {"lr": 0.1}}, source="run.yaml")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"level": "groups"}, r"level 'groups'"),
        ({"model": {"kind": "svm"}}, r"model.kind 'svm'"),
        ({"population": {"clusters": 0}}, r"population.clusters must be at least 1"),
    ],
)
def test_config_bad_values(spec, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(spec)


def test_config_wrong_types_are_config_errors():
    with pytest.raises(ConfigError, match="clusters"):
        RunConfig.from_dict({"population": {"clusters": "3"}})


def test_config_section_that_is_not_a_mapping():
    # `dataset: adult` instead of `dataset: {name: adult}`: say so, do not list letters
    with pytest.raises(ConfigError, match=r"dataset.*mapping"):
        RunConfig.from_dict({"dataset": "adult"})


def test_config_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "dataset: {name: alzheimer}\nlevel: group\npopulation: {clusters: 2}\n"
        "reward: {reward: EE, phi: 0.7}\nseed: 3\n"
    )
    config = RunConfig.from_yaml(path)
    assert (config.dataset.name, config.level, config.population.clusters, config.seed) == (
        "alzheimer", "group", 2, 3,
    )
    assert (config.reward.reward, config.reward.phi) == ("EE", 0.7)
    assert config.model.kind == "random_forest" and config.sac.batch_size == 256
    assert config.scopes_use_clusters is False
    copy = tmp_path / "copy.yaml"
    config.to_yaml(copy)
    assert RunConfig.from_yaml(copy) == config
    with pytest.raises(ConfigError, match=r"config file .*missing.yaml does not exist"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: {name: adult\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML"):
        RunConfig.from_yaml(broken)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train: {env_step: 10}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: train: unknown options \['env_step'\]"):
        RunConfig.from_yaml(typo)
