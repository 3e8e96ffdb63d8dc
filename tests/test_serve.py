"""`recourse serve` as a client uses it: a real Ray Serve application on 127.0.0.1 (on the test
session's Ray), called over HTTP with `requests`. Its answers are `recourse explain`'s for
the same rows; bad rows, a missing token, oversized and malformed requests get their status."""

import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
import requests

from distributed_recourse.batch import explain_batch
from distributed_recourse.data.datasets import FILES, read_table

TOKEN = "s3cret-token"
MAX_ROWS = 40
PEOPLE = read_table(FILES / "alzheimers_disease_data.csv").sample(120, random_state=4).reset_index(drop=True)
PROTECTED = "Gender"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_session, hand_run, tmp_path_factory):
    from ray import serve

    from distributed_recourse.serve import start

    token = tmp_path_factory.mktemp("secret") / "token"
    token.write_text(TOKEN + "\n")
    service = start(hand_run, port=free_port(), replicas=1, token_file=token, max_rows=MAX_ROWS)
    yield service.url
    serve.shutdown()


def post(url: str, body, token: str | None = TOKEN, **options) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{url}/recourse", json=body, headers=headers, timeout=60, **options)


def rows(frame) -> list[dict]:
    """Rows as a client sends them, every float to its last digit."""
    return frame.to_dict("records")


@pytest.fixture(scope="module")
def batch_answers(ray_session, hand_run, tmp_path_factory) -> dict[int, dict]:
    """`recourse explain`'s output for PEOPLE, by row, as the service answers it: without the
    protected column, and with the (empty) reason that the data parts leave to rejected/."""
    folder = tmp_path_factory.mktemp("batch")
    PEOPLE.to_parquet(folder / "people.parquet", index=False)
    explain_batch(hand_run, folder / "people.parquet", folder / "out", block_rows=50)
    table = pq.read_table(folder / "out" / "data")
    return {row.pop("row"): {**{k: v for k, v in row.items() if k not in ("source", PROTECTED)},
                             "reason": None} for row in table.to_pylist()}


def test_answers_are_what_recourse_explain_writes_without_protected_values(service, batch_answers):
    answered = post(service, rows(PEOPLE.head(MAX_ROWS)))
    assert answered.status_code == 200
    got = answered.json()["rows"]
    assert len(got) == MAX_ROWS
    for i, answer in enumerate(got):
        assert answer == batch_answers[i]
        assert answer["group"] in ("Male", "Female")
    statuses = {answer["status"] for answer in got}
    assert {"recourse", "favourable"} <= statuses
    with_text = [a for a in got if a["status"] == "recourse"]
    assert all(a["action_text"] and a["action"] >= 0 for a in with_text)
    one = post(service, rows(PEOPLE.iloc[[7]])[0])  # a single object: one row
    assert one.status_code == 200 and one.json()["rows"] == [got[7]]


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(service, batch_answers):
    def ask(start: int) -> tuple[int, list]:
        return start, post(service, rows(PEOPLE.iloc[start:start + 3])).json()["rows"]

    with ThreadPoolExecutor(12) as pool:
        for start, got in pool.map(ask, range(0, 117, 3)):
            assert got == [batch_answers[i] for i in range(start, start + 3)]


def test_a_row_failing_validation_gets_422_naming_the_column_and_the_others_are_answered(service):
    good = rows(PEOPLE.head(3))
    out_of_bounds = {**good[0], "MMSE": 45}
    no_group = {**good[0], PROTECTED: 3}
    missing = {k: v for k, v in good[1].items() if k != "ADL"}
    answered = post(service, [good[0], out_of_bounds, no_group, missing, good[2]])
    assert answered.status_code == 422
    body = answered.json()
    assert [e["row"] for e in body["errors"]] == [1, 2, 3]
    reasons = [e["reason"] for e in body["errors"]]
    assert reasons[0] == "MMSE: 45.0 is outside its bounds, expected a number in 0..30"
    assert reasons[1] == "Gender: the value has no protected group, expected one of 0, 1"
    assert reasons[2] == "ADL: missing, expected a number in 0..10"
    answers = body["rows"]
    assert [a["status"] for a in answers][1:4] == ["rejected"] * 3
    assert answers[0] == post(service, good[0]).json()["rows"][0]
    assert answers[4]["status"] != "rejected" and answers[4]["reason"] is None
    assert all(PROTECTED not in a for a in answers)
    assert not any(a["MMSE"] == 45 for a in answers)  # a rejected row's values are not echoed


def test_health_and_info_answer(service, hand_run):
    health = requests.get(f"{service}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    info = requests.get(f"{service}/info", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    assert info["run"] == str(hand_run) and info["level"] == "hybrid"
    assert set(info["sets"]) == {"cluster-0", "cluster-1"}
    assert info["sets"]["cluster-0"][0] == {"action": 0, "text": "FunctionalAssessment +3",
                                            "changes": {"FunctionalAssessment": 3.0}}
    assert info["schema"]["name"] == "alzheimer" and info["schema"]["label"] == "Diagnosis"
    assert info["model"]["kind"] == "random_forest" and info["model"]["estimator"] == "RandomForestClassifier"
    assert info["limits"]["max_rows"] == MAX_ROWS


def test_a_missing_or_wrong_token_gets_401(service):
    for token in (None, "wrong"):
        assert post(service, rows(PEOPLE.head(1)), token=token).status_code == 401
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert requests.get(f"{service}/healthz", headers=headers, timeout=30).status_code == 401
        assert requests.get(f"{service}/info", headers=headers, timeout=30).status_code == 401


def test_oversized_requests_get_413_and_malformed_ones_400(service):
    too_many = post(service, rows(PEOPLE.head(MAX_ROWS + 1)))
    assert too_many.status_code == 413 and f"at most {MAX_ROWS}" in too_many.json()["error"]
    huge = requests.post(f"{service}/recourse", data=b"[" + b" " * (3 * 2**20) + b"]", timeout=60,
                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert huge.status_code == 413
    chunked = requests.post(f"{service}/recourse", data=iter([b"["] + [b" " * 2**20] * 3 + [b"]"]),
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)  # no length
    assert chunked.status_code == 413
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for body in (b'{"MMSE": 3', b"\xff\xfe", b"12", b'[{"MMSE": 3}, 4]'):
        malformed = requests.post(f"{service}/recourse", data=body, headers=headers, timeout=30)
        assert malformed.status_code == 400, body
    assert requests.get(f"{service}/recourse", headers=headers, timeout=30).status_code == 405
    assert requests.get(f"{service}/nowhere", headers=headers, timeout=30).status_code == 404
    assert post(service, []).json() == {"rows": []}


def test_the_command_refuses_an_empty_token_file_before_starting(hand_run, tmp_path):
    (tmp_path / "empty").write_text("\n")
    done = subprocess.run([sys.executable, "-m", "distributed_recourse.cli", "serve", "--run", str(hand_run),
                           "--token-file", str(tmp_path / "empty")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "is empty" in done.stderr
