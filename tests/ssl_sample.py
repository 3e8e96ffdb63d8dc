"""A small synthetic sample of the Chicago Strategic Subject List in the exact format of
FlipTest's `chicago-ssl-clean.csv` (11 columns, no index), and a variant shaped like the data
portal's `Strategic_Subject_List_-_Historical.csv` export (more columns, another order, gzip).

The SSL itself is not shipped (about 400k rows); these samples let the loader be tested.
Rows with known outcomes are planted at fixed positions, see `PLANTED`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "SSL SCORE",
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
AGES = ["less than 20", "20-30", "30-40", "40-50", "50-60", "60-70", "70-80"]

N_ROWS = 300
PLANTED = {
    "sex_X": range(0, 8),  # unknown sex: missing
    "race_U": range(8, 12),  # unknown race: missing
    "race_I": range(12, 17),  # not studied
    "race_API": range(17, 20),  # not studied
}
SCORE_345_ROW, SCORE_344_ROW = 20, 21  # the threshold: 345 is high risk, 344 low
WBH_ROW, WWH_ROW = 22, 23
N_MISSING = 8 + 4
N_NOT_STUDIED = 5 + 3
PORTAL_BLANK_AGE_ROWS = [30, 31, 32]  # the portal export has a few blank predictors


def ssl_frame(n: int = N_ROWS, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.integers(160, 501, n)
    sex = rng.choice(["M", "F"], n, p=[0.7, 0.3]).astype(object)
    race = rng.choice(["BLK", "WHI", "WBH", "WWH"], n, p=[0.55, 0.2, 0.15, 0.1]).astype(object)
    for rows, column, value in (
        (PLANTED["sex_X"], sex, "X"),
        (PLANTED["race_U"], race, "U"),
        (PLANTED["race_I"], race, "I"),
        (PLANTED["race_API"], race, "API"),
    ):
        column[list(rows)] = value
    score[SCORE_345_ROW], score[SCORE_344_ROW] = 345, 344
    race[WBH_ROW], race[WWH_ROW] = "WBH", "WWH"
    sex[WBH_ROW] = sex[WWH_ROW] = "M"
    frame = pd.DataFrame(
        {
            "SSL SCORE": score,
            "PREDICTOR RAT AGE AT LATEST ARREST": rng.choice(AGES, n),
            "PREDICTOR RAT VICTIM SHOOTING INCIDENTS": rng.poisson(0.4, n),
            "PREDICTOR RAT VICTIM BATTERY OR ASSAULT": rng.poisson(0.8, n),
            "PREDICTOR RAT ARRESTS VIOLENT OFFENSES": rng.poisson(0.6, n),
            "PREDICTOR RAT GANG AFFILIATION": rng.integers(0, 2, n),
            "PREDICTOR RAT NARCOTIC ARRESTS": rng.poisson(1.2, n),
            "PREDICTOR RAT TREND IN CRIMINAL ACTIVITY": np.round(rng.uniform(-1.5, 2.5, n), 1),
            "PREDICTOR RAT UUW ARRESTS": rng.poisson(0.3, n),
            "SEX CODE CD": sex,
            "RACE CODE CD": race,
        }
    )
    assert list(frame.columns) == COLUMNS
    return frame


def write_clean(path: Path, n: int = N_ROWS, seed: int = 7) -> pd.DataFrame:
    """FlipTest's format: the 11 columns in their order, no index."""
    frame = ssl_frame(n, seed)
    frame.to_csv(path, index=False)
    return frame


def write_portal(path: Path, n: int = N_ROWS, seed: int = 7) -> pd.DataFrame:
    """The portal export: extra columns (some with blanks), another column order, a few blank
    predictors; gzip-compressed when the path ends in .gz."""
    frame = ssl_frame(n, seed)
    frame.loc[PORTAL_BLANK_AGE_ROWS, "PREDICTOR RAT AGE AT LATEST ARREST"] = np.nan
    rng = np.random.default_rng(seed + 1)
    extra = pd.DataFrame(
        {
            "STRATEGIC SUBJECT": [f"S{i:06d}" for i in range(n)],
            "HEAT SCORE": rng.integers(0, 500, n),
            "SSL LAST PTV DATE": np.where(rng.random(n) < 0.5, "2016-07-01", None),
            "AGE GROUP": rng.choice(["20-30", "30-40", None], n),
            "WEAPON I": rng.choice(["Y", "N"], n),
            "COMMUNITY AREA": np.where(rng.random(n) < 0.2, None, "AUSTIN"),
            "LATITUDE": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(41.6, 42.0, n)),
        }
    )
    portal = pd.concat([extra.iloc[:, :3], frame.iloc[:, ::-1], extra.iloc[:, 3:]], axis=1)
    portal.to_csv(path, index=False)
    return frame
