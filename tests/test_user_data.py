"""A user's own file: the columns to keep (`features`), its delimiter (`dataset.sep`, detected
when absent), the rows to keep (`dataset.where`) and readable names of codes (`labels`).
Small tables written here, every figure checkable by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.data.datasets import (
    detect_sep,
    load_adult,
    load_alzheimer,
    load_dataset,
    load_table,
)
from distributed_recourse.data.schema import FeatureSpace, Schema, SchemaError
from distributed_recourse.population import prepare
from distributed_recourse.recourse.describe import action_text, actions_text

# `score` is missing in row 7, `note` (text) in rows 2 and 5: only the columns kept count.
WIDE_CSV = """\
id,age,sex,race,hours,edu,job,score,note,approved
1,25,F,W,40,2,clerk,0.5,a,yes
2,38,M,B,50,3,driver,0.7,,no
3,45,F,A,20,1,clerk,0.1,b,no
4,52,M,W,60,4,manager,0.9,c,yes
5,29,F,B,35,2,driver,0.3,,no
6,33,M,W,45,5,manager,0.8,d,yes
7,41,F,W,30,3,clerk,,e,no
8,60,M,A,25,1,clerk,0.2,f,no
"""
SCHEMA = {
    "name": "wide",
    "label": "approved",
    "favourable": "yes",
    "protected": {"column": "race", "groups": {"race": {"W": "White", "*": "Other"}}},
    "actionable": [
        {"name": "hours", "kind": "con", "low": 0, "high": 80},
        {"name": "edu", "kind": "ord", "low": 1, "high": 5, "direction": "increase"},
        {"name": "job", "kind": "cat"},
    ],
    "categorical": ["sex", "race"],
}
KEPT = ["age", "sex", "race", "hours", "edu", "job", "approved"]
"""What `features: [age]` keeps: age and the columns the schema names, in the file's order."""


def schema(**changes) -> Schema:
    return Schema.from_dict({**SCHEMA, **changes})


def with_labels(**labels) -> list[dict]:
    """The actionable list with `labels` on the named features."""
    return [{**item, "labels": labels[item["name"]]} if item["name"] in labels else item
            for item in SCHEMA["actionable"]]


@pytest.fixture
def wide(tmp_path) -> Path:
    path = tmp_path / "wide.csv"
    path.write_text(WIDE_CSV)
    return path


# ---------------------------------------------------------------- features: the columns to keep
def test_features_keeps_the_listed_and_the_named_columns(wide):
    data = load_table(wide, schema(features=["age"]))
    assert list(data.frame.columns) == KEPT
    # score's and note's missing values drop no row: those columns are gone first
    assert data.rows_read == 8 and len(data.frame) == 8 and data.dropped == {"missing": 0}
    # the protected column stays a model input, as with `drop`
    assert data.space.columns == ["age", "sex", "race", "hours", "edu", "job"]
    assert data.X.shape == (8, 6)


def test_features_and_drop_are_opposites(wide):
    keep = load_table(wide, schema(features=["age", "score"]))
    drop = load_table(wide, schema(drop=["id", "note"]))
    assert keep.dropped == drop.dropped == {"missing": 1}  # row 7: no score
    pd.testing.assert_frame_equal(keep.frame, drop.frame)
    assert keep.space.columns == ["age", "sex", "race", "hours", "edu", "job", "score"]
    # naming a column the schema keeps anyway changes nothing
    listed = load_table(wide, schema(features=["age", "race", "approved", "job"]))
    assert list(listed.frame.columns) == KEPT
    # without either, the text column `note` is a model input and must be numeric
    with pytest.raises(SchemaError, match=r"column 'note' must be numeric"):
        load_table(wide, schema())


def test_features_errors_name_the_column_and_the_keys(wide):
    with pytest.raises(SchemaError,
                       match=r"column 'agee' \(in `features`\) is missing; did you mean 'age'\?"):
        load_table(wide, schema(features=["agee"]))
    with pytest.raises(SchemaError, match=r"`features`.*`drop`.*not both"):
        schema(features=["age"], drop=["id"])
    with pytest.raises(SchemaError, match=r"features must be a list"):
        schema(features="age")
    with pytest.raises(SchemaError, match=r"drop \['race'\]: .* cannot be dropped"):
        schema(drop=["id", "race"])


def test_schema_with_features_and_labels_round_trips():
    spec = schema(features=["age"], actionable=with_labels(job={"manager": "team lead"}))
    assert Schema.from_dict(spec.to_dict()) == spec
    assert Schema.from_dict(spec.to_dict()).features == ("age",)


# ---------------------------------------------------------------- sep: the delimiter
def complete_frame(wide: Path) -> pd.DataFrame:
    """The wide table without its columns with gaps (a space-delimited file cannot show one)."""
    return pd.read_csv(wide).drop(columns=["score", "note"])


@pytest.mark.parametrize("sep", [",", ";", "\t", "|", " "])
def test_delimiter_is_detected(wide, tmp_path, sep):
    frame = complete_frame(wide)
    path = tmp_path / "data.txt"
    frame.to_csv(path, sep=sep, index=False)
    assert detect_sep(path) == sep
    expected = load_table(wide, schema(features=["age"]))
    data = load_table(path, schema(features=["age"]))
    pd.testing.assert_frame_equal(data.frame, expected.frame)
    # given, it is used as it is
    assert load_table(path, schema(features=["age"]), sep=sep).rows_read == 8


def test_aligned_space_delimited_columns(wide, tmp_path):
    # runs of spaces, as a fixed-width print of the table writes them
    path = tmp_path / "aligned.txt"
    path.write_text(complete_frame(wide).to_string(index=False) + "\n")
    assert "  " in path.read_text()
    data = load_table(path, schema(features=["age"]))
    assert list(data.frame["age"]) == [25, 38, 45, 52, 29, 33, 41, 60]
    assert list(data.frame["job"])[:2] == ["clerk", "driver"]


def test_commas_win_over_spaces_inside_values(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_text("STATUS ACCOUNT,age,y\n< 0 DM,30,1\nno checking account,40,0\n"
                    "0 <= ... < 200 DM,50,1\n")
    assert detect_sep(path) == ","


@pytest.mark.parametrize("name", ["data.csv.gz", "data.csv.bz2", "data.csv.xz", "data.zip"])
def test_delimiter_of_a_compressed_file(wide, tmp_path, name):
    path = tmp_path / name
    complete_frame(wide).to_csv(path, sep=";", index=False)  # compressed by its suffix
    assert detect_sep(path) == ";"
    assert len(load_table(path, schema(features=["age"])).frame) == 8


def test_parquet_still_loads(wide, tmp_path):
    path = tmp_path / "wide.parquet"
    pd.read_csv(wide).to_parquet(path)
    data = load_table(path, schema(features=["age"]))
    assert list(data.frame.columns) == KEPT and len(data.frame) == 8


def test_single_column_error_names_the_likely_delimiter(wide, tmp_path):
    space = tmp_path / "space.txt"
    complete_frame(wide).to_csv(space, sep=" ", index=False)
    with pytest.raises(SchemaError, match=r"space.txt reads as a single column \('id age sex.*"
                       r"with the delimiter \",\"; it looks space-delimited: set dataset.sep: \" \""):
        load_table(space, schema(), sep=",")
    semicolon = tmp_path / "semicolon.csv"
    complete_frame(wide).to_csv(semicolon, sep=";", index=False)
    with pytest.raises(SchemaError, match=r"it looks semicolon-delimited: set dataset.sep: \";\""):
        load_table(semicolon, schema(), sep="\t")
    # the file: one column whatever the delimiter, and the error says so
    alone = tmp_path / "alone.csv"
    alone.write_text("CLASSIFICATION\n1\n0\n")
    with pytest.raises(SchemaError, match=r"reads as a single column \('CLASSIFICATION'\).*"
                       r"set dataset.sep to its delimiter"):
        load_table(alone, schema())


def test_config_sep_and_where_are_checked():
    config = RunConfig.from_dict({"dataset": {"name": "csv", "sep": ";",
                                              "where": {"race": ["W", "B"], "sex": "F"}}})
    assert (config.dataset.sep, config.dataset.where) == (";", {"race": ["W", "B"], "sex": "F"})
    with pytest.raises(ConfigError, match=r"run.yaml: dataset.sep must be one character"):
        RunConfig.from_dict({"dataset": {"sep": ""}}, "run.yaml")
    # YAML's '\t' (single quotes) is a backslash and a t, not a tab
    with pytest.raises(ConfigError, match=r"dataset.sep must be one character .*got '\\\\t'"):
        RunConfig.from_dict({"dataset": {"sep": "\\t"}})
    with pytest.raises(ConfigError, match=r"dataset.where: expected dict"):
        RunConfig.from_dict({"dataset": {"where": ["race"]}})
    with pytest.raises(ConfigError, match=r"dataset.where.race: expected the values to keep"):
        RunConfig.from_dict({"dataset": {"where": {"race": []}}})


# ---------------------------------------------------------------- where: the rows to keep
def test_where_keeps_the_rows_and_counts_the_rest(wide):
    # races W (rows 1, 4, 6, 7) and A (3, 8): the two B rows go
    data = load_table(wide, schema(features=["age"]), where={"race": ["W", "A"]})
    assert data.rows_read == 8 and len(data.frame) == 6
    assert data.dropped == {"where": 2, "missing": 0}
    assert list(data.frame["age"]) == [25, 45, 52, 33, 41, 60]
    assert data.report()["dropped"] == {"where": 2, "missing": 0}
    # two columns: and; one value needs no list; numbers compare as group maps do (2.0 is 2)
    both = load_table(wide, schema(features=["age"]),
                      where={"race": ["W", "A"], "edu": [1.0, 2, 4]})
    assert list(both.frame["age"]) == [25, 45, 52, 60] and both.dropped["where"] == 4
    one = load_table(wide, schema(features=["age"]), where={"sex": "M"})
    assert list(one.frame["age"]) == [38, 52, 33, 60]
    # the filter may use a column that is not kept (`id`), and runs before missing values count
    by_id = load_table(wide, schema(drop=["id", "note"]), where={"id": [1, 4, 7, 8]})
    assert by_id.dropped == {"where": 4, "missing": 1} and list(by_id.frame["age"]) == [25, 52, 60]


def test_where_errors_name_the_column_and_the_values(wide):
    with pytest.raises(SchemaError, match=r"column 'rase' \(in `dataset.where`\) is missing; "
                                          r"did you mean 'race'\?"):
        load_table(wide, schema(), where={"rase": ["W"]})
    with pytest.raises(SchemaError, match=r"column 'race' never takes the values \['White'\]; "
                                          r"its values: \['A', 'B', 'W'\]"):
        load_table(wide, schema(), where={"race": ["W", "White"]})
    with pytest.raises(SchemaError, match=r"dataset.where .*'race'.*'sex'.* keeps no row"):
        load_table(wide, schema(), where={"race": ["B"], "sex": ["F"], "age": [60]})


def test_where_reaches_population_json(tmp_path):
    # the shipped small config on Alzheimer, its Ethnicity 0 and 1 only (1,278 + 454 rows)
    config = RunConfig.from_yaml("tiny")
    config.dataset.where = {"Ethnicity": [0, 1]}
    prepared = prepare(config)
    prepared.save(tmp_path)
    report = json.loads((tmp_path / "population.json").read_text())["data"]
    assert (report["rows_read"], report["rows"]) == (2_149, 1_732)
    assert report["dropped"] == {"where": 211 + 206, "missing": 0}
    assert prepared.summary["n_rows"] == 1_732


def test_builtin_datasets_load_as_before():
    # no filter, no `where` entry: the reports the other tests pin stay as they were
    assert load_alzheimer().dropped == {"missing": 0}
    ethnicity = load_dataset("alzheimer", where={"Ethnicity": 3})
    assert ethnicity.dropped == {"where": 2_149 - 211, "missing": 0}
    adult = load_adult(where={"sex": ["Female"]})
    assert adult.dropped["where"] == 32_650  # of 48,842 rows read, 16,192 are women
    assert set(adult.frame["sex"]) == {"Female"}


# ---------------------------------------------------------------- labels: codes by name
def labelled(wide: Path):
    return load_table(wide, schema(
        features=["age"],
        actionable=with_labels(job={"manager": "team lead", "clerk": "office clerk"},
                               edu={1: "primary", 5: "doctorate"}),
    ))


def test_labels_name_the_targets_of_an_action(wide):
    data = labelled(wide)
    features = data.space.describe_actionable()
    assert features["job"] == {"kind": "cat", "direction": "any",
                               "categories": ["clerk", "driver", "manager"],
                               "labels": {"manager": "team lead", "clerk": "office clerk"}}
    assert features["hours"] == {"kind": "con", "direction": "any"}  # no labels, no entry
    # job code 2 is `manager`; edu 5 has a label, 3 has none; driver (1) has none
    assert action_text({"hours": 5.0, "job": 2.0, "edu": 5.0}, features) == (
        "hours +5; job → team lead; edu at least doctorate")
    assert actions_text([{"edu": 3.0}, {"job": 1.0}], features) == (
        "edu at least 3 | job → driver")
    # the labels travel with the feature space a run saves (model.json)
    space = FeatureSpace.from_dict(json.loads(json.dumps(data.space.to_dict())))
    assert space.describe_actionable() == features


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"job": {"manger": "boss"}},
         r"'job': labels for \['manger'\], which are not among its values "
         r"\(did you mean 'manager'\?\); values: \['clerk', 'driver', 'manager'\]"),
        ({"edu": {6: "post-doc"}}, r"'edu': labels for \['6'\], which are not among its levels "
                                   r"\(whole numbers 1..5\)"),
        ({"edu": {"two": "secondary", 2.5: "x"}}, r"'edu': labels for \['two', '2.5'\]"),
    ],
)
def test_label_keys_must_be_values_of_the_feature(wide, labels, message):
    with pytest.raises(SchemaError, match=message):
        load_table(wide, schema(features=["age"], actionable=with_labels(**labels)))


def test_labels_on_the_wrong_kind_of_feature():
    with pytest.raises(SchemaError, match=r"'hours': labels name the values of a `cat` or `ord`"):
        schema(actionable=with_labels(hours={40: "full time"}))
    with pytest.raises(SchemaError, match=r"'job': labels must map value -> readable name"):
        schema(actionable=with_labels(job=["team lead"]))
    # immutable categorical columns take no labels: `categorical` stays a list of names
    with pytest.raises(SchemaError, match=r"categorical must be a list"):
        schema(categorical="sex")


def test_numbers_of_ordinal_levels_compare_as_text(wide):
    # YAML reads `{1: primary}` with an integer key; the data's 1 and an action's 1.0 match it
    data = labelled(wide)
    assert data.schema.actionable[1].labels == {"1": "primary", "5": "doctorate"}
    assert action_text({"edu": 1.0}, data.space.describe_actionable()) == "edu at least primary"
    assert np.array_equal(data.X[:, data.space.columns.index("edu")], [2, 3, 1, 4, 2, 5, 3, 1])
