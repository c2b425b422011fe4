"""The registered merged ensemble behind real HTTP: `ttsctr-serve` on a tiny `kedro run`.

One real run (module fixture) on 20k synthetic rows trains a two-member DCNv2 ensemble and
registers it at scales 1× and 2×; the 2× version is served by `ttsctr-serve` (MLflow's scoring app
behind ``ttsctr.http_guard``) as a subprocess on a free loopback port, exactly as README shows.
Requests go over HTTP (loopback only, proxies bypassed) and are checked against what the pipeline
wrote:

* good requests (``dataframe_records`` and ``dataframe_split``) of the raw test rows answer 200
  with the pipeline's stored merged test probabilities;
* bad requests answer 4xx naming the offending columns, and the server still answers afterwards;
* the guard answers before any JSON parsing: a body nested 1,000 levels deep (which makes plain
  `mlflow models serve` fail with a RecursionError and HTTP 500) and ``NaN``/``Infinity``
  literals are a 400, a body over 16 MiB a 413 (by ``Content-Length`` alone, in full, or chunked);
* a bounded mixed load (good and bad, 4 concurrent clients) gets no 5xx;
* unseen categorical values answer 200 (OOV), an empty string and ``null`` are served as missing.

Categorical fields take JSON strings only: a JSON number in one (``"C1": 12345``) is a 400, not
converted, because a number has no unique text form (leading zeros of hashes, ``1`` vs ``1.0``)
and a conversion would silently serve a wrong probability (see ``ttsctr.serving``). A float NaN
is a number too: the model itself refuses it (checked on plain `mlflow models serve`, where the
guard does not stop the literal first), while ``null`` stays missing in both orientations.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from projecthelpers import kedro_env, make_project, raw_test_rows, run_kedro, tiny_tts_parameters
from ttsctr.data.readers import get_reader
from ttsctr.http_guard import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH

pytestmark = pytest.mark.slow

DATASET = "synthetic"
ENSEMBLE = "dcnv2_x2"
MODEL = f"ttsctr-{DATASET}-{ENSEMBLE}"
TINY = tiny_tts_parameters(ENSEMBLE, max_epochs=1)
STARTUP_S = 90      # model load + uvicorn start; a few seconds on an idle machine
REQUEST_S = 60
DEEP = b'{"dataframe_records": ' + b"[" * 1000 + b"]" * 1000 + b"}"  # ~2 KB, 1,001 levels
# Loopback only: no proxy, whatever the environment says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    project: Path
    url: str
    proc: subprocess.Popen
    log: Path

    def post(self, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
        """(status, decoded JSON or text) of POST /invocations; ``body`` bytes are sent as they are."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/invocations", data=data, headers={"Content-Type": content_type})
        try:
            with _HTTP.open(req, timeout=REQUEST_S) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                chunked: bool = False, content_length: int | None = None) -> tuple[int, Any]:
        """(status, decoded JSON or text) over http.client: ``chunked`` streams ``body`` in 1 MiB chunks
        without Content-Length; ``content_length`` sends only the headers, declaring that length."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_S)
        try:
            headers = {"Content-Type": content_type}
            if content_length is not None:
                conn.putrequest(method, path)
                for key, value in {**headers, "Content-Length": str(content_length)}.items():
                    conn.putheader(key, value)
                conn.endheaders()
            elif chunked:
                parts = (body[i:i + (1 << 20)] for i in range(0, len(body or b""), 1 << 20))
                conn.request(method, path, body=parts, headers={**headers, "Transfer-Encoding": "chunked"},
                             encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=headers if body is not None else {})
            resp = conn.getresponse()
            status, text = resp.status, resp.read().decode()
        finally:
            conn.close()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(url: str) -> bool:
    try:
        with _HTTP.open(f"{url}/ping", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (mlflow CLI + uvicorn), SIGKILL if it lingers."""
    if proc.poll() is None:
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
    # uvicorn may outlive the CLI: the group is ours alone (start_new_session), end what is left
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _version_at_scale(project: Path, scale: int) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return next(v.version for v in versions if v.tags["scale"] == str(scale))


def _serve_command(kind: str, uri: str, port: int) -> list[str]:
    """``ttsctr-serve`` (the guard; the console script, or ``python -m ttsctr.serve`` if it is not
    installed) or plain ``mlflow models serve``, on 127.0.0.1:``port``."""
    bin_dir = Path(sys.executable).parent
    if kind == "plain":
        return [str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    script = bin_dir / "ttsctr-serve"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ttsctr.serve"]
    return [*cmd, "-m", uri, "-p", str(port), "-h", "127.0.0.1"]


def _start(project: Path, uri: str, env: dict[str, str], kind: str = "guard") -> Server:
    """A server on a free loopback port, ready (GET /ping 200) or stopped and failed."""
    for attempt in range(3):
        port = _free_port()
        log = project / f"serve-{kind}-{attempt}.log"
        with log.open("wb") as out:
            # kedro_env puts the venv's bin first on PATH: `mlflow models serve` starts `uvicorn` by name
            proc = subprocess.Popen(_serve_command(kind, uri, port), cwd=project, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        srv = Server(project, f"http://127.0.0.1:{port}", proc, log)
        try:
            deadline = time.monotonic() + STARTUP_S
            while not _ping(srv.url):
                if proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"{kind} server not ready after {STARTUP_S}s:\n{srv.log_tail()}")
                time.sleep(0.25)
            else:
                return srv
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        if "address already in use" not in srv.log_tail().lower():  # lost the port race: try another port
            break
    pytest.fail(f"{kind} server exited with {proc.returncode}:\n{srv.log_tail()}")


@dataclass
class Trained:
    project: Path
    uri: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    project = make_project(tmp_path_factory.mktemp("serving"), TINY)
    run_kedro(project)
    uri = f"models:/{MODEL}/{_version_at_scale(project, 2)}"
    env = {**kedro_env(),
           "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return Trained(project, uri, env)


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[Server]:
    """`ttsctr-serve` with its default limits."""
    srv = _start(trained.project, trained.uri, trained.env, "guard")
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def plain_server(trained: Trained) -> Iterator[Server]:
    """Plain `mlflow models serve`: requests reach the model without the guard."""
    srv = _start(trained.project, trained.uri, trained.env, "plain")
    try:
        yield srv
    finally:
        _stop(srv.proc)


# ---- what the pipeline wrote -----------------------------------------------------------------

def _stored_merged_test_probabilities(project: Path) -> np.ndarray:
    """Eq. 13 over the groups' stored ``group_prob`` (weights: members per group)."""
    folder = project / "data" / "07_model_output" / DATASET / ENSEMBLE
    total, weights = None, 0
    row_index = None
    for group in sorted(p for p in folder.iterdir() if p.is_dir()):
        frame = pq.read_table(group / "test.parquet").to_pandas()
        if row_index is None:
            row_index = frame["row_index"].to_numpy()
        assert (frame["row_index"].to_numpy() == row_index).all()
        size = sum(c.endswith("_prob") and c != "group_prob" for c in frame.columns)
        part = size * frame["group_prob"].to_numpy(np.float64)
        total = part if total is None else total + part
        weights += size
    assert weights == 2
    return total / weights


def _records(raw: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON records as a client sends them: ints for numeric fields, strings for categorical, null if missing."""
    kinds = {f.name: f.kind for f in get_reader("synthetic").fields}
    out = []
    for row in raw.itertuples(index=False):
        rec = {}
        for name, value in zip(raw.columns, row):
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                rec[name] = None
            else:
                rec[name] = int(value) if kinds[name] == "numeric" else str(value)
        out.append(rec)
    return out


@pytest.fixture(scope="module")
def test_rows(trained: Trained) -> tuple[list[dict[str, Any]], np.ndarray]:
    raw = raw_test_rows(trained.project)
    expected = _stored_merged_test_probabilities(trained.project)
    assert len(raw) == len(expected) > 1000
    return _records(raw), expected


def _probabilities(answer: Any) -> np.ndarray:
    return np.array([p["probability"] for p in answer["predictions"]], dtype=np.float64)


def _assert_alive(server: Server, good: list[dict[str, Any]]) -> None:
    assert server.proc.poll() is None, server.log_tail()
    status, answer = server.post({"dataframe_records": good})
    assert status == 200, answer
    assert len(answer["predictions"]) == len(good)


# ---- good requests ---------------------------------------------------------------------------

def test_records_match_the_pipelines_merged_test_predictions(server: Server, test_rows) -> None:
    records, expected = test_rows
    status, answer = server.post({"dataframe_records": records})
    assert status == 200, answer
    np.testing.assert_allclose(_probabilities(answer), expected, rtol=0, atol=2e-6)


def test_split_orientation_matches_too(server: Server, test_rows) -> None:
    records, expected = test_rows
    columns = list(records[0])
    rows = records[:500]
    status, answer = server.post({"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}})
    assert status == 200, answer
    np.testing.assert_allclose(_probabilities(answer), expected[:500], rtol=0, atol=2e-6)


def test_unseen_categorical_values_are_served_as_oov(server: Server, test_rows) -> None:
    records, expected = test_rows
    rows = records[:50]
    answers = []
    for value in ("deadbeef", "cafebabe"):  # never seen in training: both the C3 OOV id
        status, answer = server.post({"dataframe_records": [{**r, "C3": value} for r in rows]})
        assert status == 200, answer
        answers.append(_probabilities(answer))
    np.testing.assert_array_equal(answers[0], answers[1])
    assert np.all((answers[0] > 0) & (answers[0] < 1))
    assert not np.allclose(answers[0], expected[:50], atol=1e-6)


def test_empty_string_is_served_as_missing_like_an_empty_raw_field(server: Server, test_rows) -> None:
    records, _ = test_rows
    rows = records[:50]
    answers = []
    for value in ("", None):
        status, answer = server.post({"dataframe_records": [{**r, "C1": value, "I2": value} for r in rows]})
        assert status == 200, answer
        answers.append(_probabilities(answer))
    np.testing.assert_array_equal(answers[0], answers[1])


# ---- bad requests: 4xx naming the columns, and the server keeps serving ----------------------

def _bad_cases(good: list[dict[str, Any]]) -> dict[str, tuple[Any, list[str]]]:
    """name -> (body, strings the error message must contain)."""
    first = good[0]
    return {
        "missing column": ({"dataframe_records": [{k: v for k, v in r.items() if k != "I5"} for r in good]},
                           ["missing columns", "'I5'"]),
        "extra column": ({"dataframe_records": [{**r, "campaign": 7} for r in good]}, ["unexpected columns", "'campaign'"]),
        "string in a numeric column": ({"dataframe_records": [{**r, "I1": "abc"} for r in good]}, ["'I1'", "'abc'"]),
        "string in one row of a numeric column": ({"dataframe_records": [first, {**first, "I1": "abc"}]}, ["'I1'", "'abc'", "row 1"]),
        "fractional number in a numeric column": ({"dataframe_records": [{**r, "I4": 2.5} for r in good]}, ["'I4'", "2.5"]),
        "number in a categorical column": ({"dataframe_records": [{**r, "C1": 12345} for r in good]},
                                           ["'C1'", "JSON strings"]),
        "number in one row of a categorical column": ({"dataframe_records": [first, {**first, "C7": 7}]}, ["'C7'", "int"]),
        "bool in a categorical column": ({"dataframe_records": [{**r, "C2": True} for r in good]}, ["'C2'"]),
        "empty records": ({"dataframe_records": []}, ["no rows"]),
        "empty split": ({"dataframe_split": {"columns": list(first), "data": []}}, ["no rows"]),
        "malformed JSON": (b'{"dataframe_records": [{"I1": 1,', ["valid JSON"]),
        "not UTF-8": (b"\xff\xfe\x00", ["valid JSON"]),
        "records not a list": ({"dataframe_records": first}, ["list of records"]),
        "no input key": ({"rows": [first]}, ["dataframe_records"]),
        "duplicated split columns": ({"dataframe_split": {"columns": [*first, "I1"], "data": [[*r.values(), 1] for r in good]}},
                                     ["duplicated columns", "'I1'"]),
        "integer outside int64 in a numeric column": ({"dataframe_records": [{**r, "I1": 2**70} for r in good]},
                                                      ["'I1'", "outside int64"]),
        "integer outside int64 in a categorical column": ({"dataframe_records": [{**r, "C1": 2**70} for r in good]},
                                                          ["'C1'", "JSON strings"]),
        "list in a categorical column": ({"dataframe_records": [{**r, "C1": ["68fd1e64"]} for r in good]}, ["'C1'"]),
        "empty body": (b"", ["valid JSON"]),
        "lone surrogate escape in a categorical value": ({"dataframe_records": [{**r, "C1": "\ud800"} for r in good]},
                                                         ["surrogates not allowed"]),
        "lone surrogate bytes (not UTF-8)": (b'{"dataframe_records": [{"C1": "\xed\xa0\x80"}]}', ["not UTF-8", "valid JSON"]),
        # the guard, before any JSON parsing
        "nested 1,000 levels deep": (DEEP, [f"more than {DEFAULT_MAX_DEPTH} levels", "--max-depth"]),
        "NaN in a categorical column": ({"dataframe_records": [{**r, "C1": float("nan")} for r in good]}, ["NaN", "null"]),
        "NaN in one row of a categorical column": ({"dataframe_records": [first, {**first, "C1": float("nan")}]}, ["NaN", "null"]),
        "NaN in a split row": ({"dataframe_split": {"columns": list(first),
                                                    "data": [[float("nan") if k == "C2" else v for k, v in first.items()]]}},
                               ["NaN", "null"]),
        "NaN in a numeric column": ({"dataframe_records": [{**r, "I1": float("nan")} for r in good]}, ["NaN", "null"]),
        "Infinity in a numeric column": ({"dataframe_records": [{**r, "I2": float("inf")} for r in good]}, ["literal Infinity"]),
        "-Infinity in a numeric column": ({"dataframe_records": [{**r, "I3": float("-inf")} for r in good]}, ["literal -Infinity"]),
    }


BAD = list(_bad_cases([{"I1": 0}]))


@pytest.mark.parametrize("case", BAD)
def test_bad_request_is_4xx_naming_the_columns_and_the_server_keeps_serving(server: Server, test_rows, case: str) -> None:
    records, _ = test_rows
    good = records[:3]
    body, needles = _bad_cases(good)[case]
    status, answer = server.post(body)
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and answer.get("error_code") in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"), answer
    message = answer["message"]
    # MLflow prefixes the model's message with the request; our part follows "Error:"
    for needle in needles:
        assert needle in message, (needle, message[-1500:])
    _assert_alive(server, good)


def test_wrong_content_type_is_4xx(server: Server, test_rows) -> None:
    records, _ = test_rows
    status, _ = server.post(b"I1\tI2\n1\t2\n", content_type="text/plain")
    assert status == 415
    _assert_alive(server, records[:3])


# ---- the guard: routes, body size, null vs NaN, mixed load -----------------------------------

def test_guard_keeps_mlflows_routes(server: Server) -> None:
    for path in ("/ping", "/health"):
        assert server.request("GET", path)[0] == 200
    status, version = server.request("GET", "/version")
    assert (status, str(version)) == (200, mlflow.__version__)


@pytest.mark.parametrize("how", ["Content-Length alone", "Content-Length and body", "chunked"])
def test_body_over_the_limit_is_413_and_the_server_keeps_serving(server: Server, test_rows, how: str) -> None:
    records, _ = test_rows
    body = b"[" + b" " * DEFAULT_MAX_BODY_BYTES + b"]"
    if how == "Content-Length alone":  # refused from the header: the body is never sent
        status, answer = server.request("POST", "/invocations", content_length=len(body))
    else:
        status, answer = server.request("POST", "/invocations", body=body, chunked=how == "chunked")
    assert status == 413, answer
    assert answer["error_code"] == "RESOURCE_EXHAUSTED"
    assert f"larger than {DEFAULT_MAX_BODY_BYTES} bytes" in answer["message"] and "--max-body-bytes" in answer["message"]
    _assert_alive(server, records[:3])


def test_null_is_missing_in_both_orientations(server: Server, test_rows) -> None:
    records, _ = test_rows
    rows = records[:20]
    columns = list(rows[0])
    shapes = {
        "all null": [{**r, "C1": None} for r in rows],
        "null among strings": [rows[0], *({**r, "C1": None} for r in rows[1:])],
    }
    answers = {}
    for shape, recs in shapes.items():
        for orient, body in (("records", {"dataframe_records": recs}),
                             ("split", {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in recs]}})):
            status, answer = server.post(body)
            assert status == 200, (shape, orient, answer)
            answers[shape, orient] = _probabilities(answer)
    np.testing.assert_array_equal(answers["all null", "records"], answers["all null", "split"])
    np.testing.assert_array_equal(answers["null among strings", "records"], answers["null among strings", "split"])
    np.testing.assert_allclose(answers["null among strings", "records"][1:], answers["all null", "records"][1:], rtol=0, atol=1e-6)


def test_a_float_nan_in_a_categorical_field_is_refused_by_the_model_too(plain_server: Server, test_rows) -> None:
    """Without the guard (plain `mlflow models serve`) a NaN literal reaches the model: a number, so 400."""
    records, _ = test_rows
    rows = records[:3]
    columns = list(rows[0])
    nan = float("nan")
    for values in ([nan, nan, nan], [nan, None, None]):
        recs = [{**r, "C1": v} for r, v in zip(rows, values)]
        for body in ({"dataframe_records": recs},
                     {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in recs]}}):
            status, answer = plain_server.post(body)
            assert status == 400, answer
            message = answer["message"]
            assert "'C1'" in message and "float NaN" in message and "null" in message, message[-1500:]
    for body in ({"dataframe_records": [{**r, "C1": None} for r in rows]},
                 {"dataframe_split": {"columns": columns, "data": [[None if c == "C1" else r[c] for c in columns] for r in rows]}}):
        status, answer = plain_server.post(body)
        assert status == 200, answer


LOAD_S = 60  # hang guard; the load below takes a few seconds


def test_mixed_load_gets_no_5xx_and_the_server_keeps_serving(server: Server, test_rows) -> None:
    """~330 requests from 4 concurrent clients: good single rows and batches mixed with every bad kind."""
    records, expected = test_rows
    rng = np.random.default_rng(11)
    jobs: list[tuple[str, Any, Any]] = []  # (kind, body, check)
    for i in rng.choice(len(records), 200, replace=False):
        jobs.append(("good row", {"dataframe_records": [records[i]]}, expected[i:i + 1]))
    for start in rng.choice(len(records) - 50, 20, replace=False):
        jobs.append(("good batch", {"dataframe_records": records[start:start + 50]}, expected[start:start + 50]))
    for _ in range(4):
        for name, (body, _) in _bad_cases(records[:3]).items():
            jobs.append((name, body, None))
    big = b"[" + b" " * DEFAULT_MAX_BODY_BYTES + b"]"
    jobs += [("oversized", big, None), ("oversized chunked", big, None)]
    order = rng.permutation(len(jobs))

    def send(k: int) -> tuple[str, int, Any, Any]:
        kind, body, check = jobs[k]
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, answer = server.request("POST", "/invocations", body=data, chunked=kind == "oversized chunked")
        return kind, status, answer, check

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(send, order, timeout=LOAD_S))
    elapsed = time.monotonic() - t0
    server_errors = [(kind, status, str(answer)[:300]) for kind, status, answer, _ in results if status >= 500]
    assert not server_errors, server_errors
    for kind, status, answer, check in results:
        if check is None:
            assert 400 <= status < 500, (kind, status, str(answer)[:500])
        else:
            assert status == 200, (kind, answer)
            np.testing.assert_allclose(_probabilities(answer), check, rtol=0, atol=2e-6)
    assert elapsed < LOAD_S
    assert server.request("GET", "/ping")[0] == 200
    _assert_alive(server, records[:3])
