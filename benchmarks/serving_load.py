"""Load benchmark: ``ttsctr-serve`` (MLflow's scoring app behind ``ttsctr.http_guard``) under mixed traffic.

    .venv/bin/python benchmarks/serving_load.py [--model-uri models:/ttsctr-synthetic-dcnv2_x8/3]
        [--project .] [--rows rows.json] [-n 3000] [--clients 4] [--seed 0] [--no-plain]
    .venv/bin/python benchmarks/serving_load.py --scan-only

Trains nothing. The model is a registered (or logged) pyfunc model in ``--tracking-uri`` (default
``$MLFLOW_TRACKING_URI``, else ``sqlite:///<project>/mlflow.db``); the good rows are the dataset's
raw test rows of ``--project`` (the split the pipeline wrote, rebuilt as
``ttsctr.serving.raw_split_rows``) or ``--rows``, a JSON list of raw records.

It starts ``ttsctr-serve`` on a free loopback port and sends ``-n`` requests, drawn with
``--seed``: 70% good single rows, 10% good batches of ``--batch`` rows, 20% malformed, spread
evenly over every malformed kind (missing/extra/duplicated columns, wrong types, ``2**70``, a
number or a list in a categorical field, lone surrogates, not UTF-8, empty body, invalid JSON,
wrong content type, a body nested 1,000 levels deep, ``NaN``/``Infinity``/``-Infinity`` literals,
and bodies over 16 MiB declared by ``Content-Length``, sent in full, and chunked). The same
requests are sent once sequentially and once from ``--clients`` concurrent clients (one HTTP
connection per request, as ``urllib``/``curl`` do). It prints the counts by status code (5xx
must be 0: the exit code is 1 otherwise) and p50/p99 latency of the good single rows. As a
reference, in the same run, plain ``mlflow models serve`` gets the same good requests (and each
malformed kind once, to show what it answers without the guard); the ratios are guard / plain.

``--scan-only`` (also printed in a full run) times the guard's scan (``ttsctr.http_guard.scan_json``)
against ``json.loads`` on the same 16 MiB body of raw records, best of 5.

Measured on a 2-core machine (``models:/ttsctr-synthetic-dcnv2_x8/3``, 11,844 test rows, defaults:
2,100 good single rows, 287 good batches of 100, 613 malformed of 27 kinds):

* scan vs ``json.loads``, 16.0 MiB body of 27,624 records: 68 ms vs 133 ms, ratio 0.51 (0.47-0.51
  over runs; bodies of only quotes, backslashes or brackets: 25-60 ms);
* ``ttsctr-serve`` sequential: 200: 2387, 400: 528, 413: 63, 415: 22 -- no 5xx; good single rows
  p50 14.2 ms, p99 18.9 ms; with 4 clients the same counts, p50 57.9 ms, p99 120.5 ms;
* plain ``mlflow models serve``, the same 2,387 good requests: p50 15.5 / p99 49.1 ms sequential,
  p50 56.2 / p99 155.1 ms with 4 clients; guard / plain: p50 0.92 and 1.03, p99 0.38 and 0.78
  (the guard adds no measurable latency; p99 on 2 shared cores is noise-dominated);
* plain ``mlflow models serve`` answers the 1,000-deep body with 500 (RecursionError), a JSON
  ``NaN`` in a numeric field with 200 (served as missing), and waits for a body that is declared
  but never sent until its 60 s timeout (504); ``ttsctr-serve`` answers 400, 400 and 413 at once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ttsctr.http_guard import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, scan_json  # noqa: E402

DEFAULT_MODEL = "models:/ttsctr-synthetic-dcnv2_x8/3"
STARTUP_S = 180
REQUEST_S = 120
JSON = "application/json"


# ---- rows --------------------------------------------------------------------------------------

def test_records(project: Path, dataset: str) -> list[dict[str, Any]]:
    """The raw test rows of ``project``'s encoded ``dataset`` as JSON records (ints, strings, null)."""
    from ttsctr.data.readers import get_reader
    from ttsctr.serving import raw_split_rows

    model_input = project / "data" / "05_model_input"
    summary = json.loads((model_input / f"{dataset}.summary.json").read_text())
    table = raw_split_rows(summary, model_input / dataset, "test", base=project)
    feature_map = json.loads((model_input / dataset / "feature_map.json").read_text())
    kinds = {f.name: f.kind for f in get_reader(summary["format"], **feature_map.get("reader_options", {})).fields}
    out = []
    for row in table.to_pylist():
        out.append({k: (None if v is None else int(v) if kinds[k] == "numeric" else str(v)) for k, v in row.items()})
    return out


# ---- requests ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Req:
    kind: str                       # "good row", "good batch", or the malformed kind
    body: bytes | None = None
    content_type: str = JSON
    chunked: bool = False
    declared_length: int | None = None  # send only the headers, declaring this Content-Length

    @property
    def good(self) -> bool:
        return self.kind.startswith("good")


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # allow_nan: NaN/Infinity literals where the values are float nan/inf


def malformed(records: list[dict[str, Any]], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> list[Req]:
    """One request of every malformed kind, built from the first three good records."""
    good = records[:3]
    first = good[0]
    cols = list(first)
    num = next(k for k in cols if any(isinstance(r[k], int) and not isinstance(r[k], bool) for r in records))
    cat = next(k for k in cols if any(isinstance(r[k], str) for r in records))
    recs = lambda **kv: _j({"dataframe_records": [{**r, **kv} for r in good]})  # noqa: E731
    big = b"[" + b" " * max_body_bytes + b"]"
    return [
        Req("missing column", _j({"dataframe_records": [{k: v for k, v in r.items() if k != num} for r in good]})),
        Req("extra column", recs(campaign=7)),
        Req("duplicated split columns", _j({"dataframe_split": {"columns": [*cols, num], "data": [[*r.values(), 1] for r in good]}})),
        Req("string in a numeric field", recs(**{num: "abc"})),
        Req("fractional number in a numeric field", recs(**{num: 2.5})),
        Req("2**70 in a numeric field", recs(**{num: 2**70})),
        Req("2**70 in a categorical field", recs(**{cat: 2**70})),
        Req("number in a categorical field", recs(**{cat: 12345})),
        Req("bool in a categorical field", recs(**{cat: True})),
        Req("list in a categorical field", recs(**{cat: ["x"]})),
        Req("lone surrogate escape", recs(**{cat: "\ud800"})),
        Req("lone surrogate bytes", b'{"dataframe_records": [{"%s": "\xed\xa0\x80"}]}' % cat.encode()),
        Req("not UTF-8", b"\xff\xfe\x00"),
        Req("empty body", b""),
        Req("invalid JSON", b'{"dataframe_records": [{"I1": 1,'),
        Req("empty records", _j({"dataframe_records": []})),
        Req("records not a list", _j({"dataframe_records": first})),
        Req("no input key", _j({"rows": good})),
        Req("wrong content type", b"I1\tI2\n1\t2\n", content_type="text/plain"),
        Req("nested 1,000 deep", b'{"dataframe_records": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
        Req("NaN in a categorical field", recs(**{cat: float("nan")})),
        Req("NaN in a numeric field", recs(**{num: float("nan")})),
        Req("Infinity", recs(**{num: float("inf")})),
        Req("-Infinity", recs(**{num: float("-inf")})),
        Req("oversized, Content-Length only", declared_length=len(big)),
        Req("oversized, full body", big),
        Req("oversized, chunked", big, chunked=True),
    ]


def request_mix(records: list[dict[str, Any]], n: int, batch: int, seed: int) -> list[Req]:
    rng = np.random.default_rng(seed)
    bad = malformed(records)
    out = []
    for u in rng.random(n):
        if u < 0.7:
            out.append(Req("good row", _j({"dataframe_records": [records[int(rng.integers(len(records)))]]})))
        elif u < 0.8:
            start = int(rng.integers(len(records) - batch))
            out.append(Req("good batch", _j({"dataframe_records": records[start:start + batch]})))
        else:
            out.append(bad[int(rng.integers(len(bad)))])
    return out


@dataclass
class Result:
    kind: str
    status: int | str   # HTTP status, or the exception's name (TimeoutError: no answer within the timeout)
    seconds: float


def send(port: int, req: Req, timeout: float = REQUEST_S) -> Result:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": req.content_type}
        if req.declared_length is not None:
            conn.putrequest("POST", "/invocations")
            for key, value in {**headers, "Content-Length": str(req.declared_length)}.items():
                conn.putheader(key, value)
            conn.endheaders()
        elif req.chunked:
            body = req.body or b""
            parts = (body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20))
            conn.request("POST", "/invocations", body=parts, headers={**headers, "Transfer-Encoding": "chunked"},
                         encode_chunked=True)
        else:
            conn.request("POST", "/invocations", body=req.body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        status: int | str = resp.status
    except (OSError, http.client.HTTPException) as exc:
        status = type(exc).__name__
    finally:
        conn.close()
    return Result(req.kind, status, time.perf_counter() - t0)


def run(port: int, reqs: list[Req], clients: int) -> tuple[list[Result], float]:
    t0 = time.perf_counter()
    if clients <= 1:
        results = [send(port, r) for r in reqs]
    else:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            results = list(pool.map(lambda r: send(port, r), reqs))
    return results, time.perf_counter() - t0


# ---- servers -----------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start(name: str, cmd: Callable[[int], list[str]], env: dict[str, str], cwd: Path, logdir: Path) -> Server:
    for attempt in range(3):
        port = _free_port()
        log = logdir / f"{name}-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd(port), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + STARTUP_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _ping(port):
                return Server(name, port, proc, log)
            time.sleep(0.25)
        stop(proc)
        text = log.read_text(errors="replace")
        if "address already in use" not in text.lower():
            raise SystemExit(f"{name} did not start:\n{text[-4000:]}")
    raise SystemExit(f"{name} did not start: no free port")


def stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # uvicorn may outlive `mlflow models serve`
    except ProcessLookupError:
        pass


# ---- report ------------------------------------------------------------------------------------

def pct(results: list[Result], kind: str = "good row") -> tuple[float, float]:
    ms = np.array([r.seconds for r in results if r.kind == kind and r.status == 200]) * 1e3
    return (float(np.percentile(ms, 50)), float(np.percentile(ms, 99))) if len(ms) else (float("nan"), float("nan"))


def counts(results: list[Result]) -> dict[str, int]:
    return dict(sorted(Counter(str(r.status) for r in results).items()))


def scan_benchmark(records: list[dict[str, Any]], size: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, float]:
    one = [json.dumps(r) for r in records]
    parts, total, i = [], 25, 0
    while total + len(one[i % len(one)]) + 2 < size:
        parts.append(one[i % len(one)])
        total += len(parts[-1]) + 2
        i += 1
    body = ('{"dataframe_records": [' + ", ".join(parts) + "]}").encode()

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    assert scan_json(body) is None
    t_scan = best(lambda: scan_json(body))
    t_json = best(lambda: json.loads(body))
    return {"mib": len(body) / 2**20, "records": len(parts), "scan_ms": t_scan * 1e3, "json_ms": t_json * 1e3,
            "ratio": t_scan / t_json}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-uri", default=DEFAULT_MODEL)
    ap.add_argument("--project", type=Path, default=REPO, help="Kedro project holding data/ and mlflow.db (default: this checkout)")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--rows", type=Path, default=None, help="JSON list of raw records (default: the dataset's test rows)")
    ap.add_argument("-n", "--requests", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100, help="rows per good batch request")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plain", action="store_true", help="skip the reference run on plain mlflow models serve")
    ap.add_argument("--scan-only", action="store_true", help="only time the scan against json.loads")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = ap.parse_args(argv)

    project = args.project.resolve()
    records = json.loads(args.rows.read_text()) if args.rows else test_records(project, args.dataset)
    scan = scan_benchmark(records)
    print(f"scan vs json.loads on a {scan['mib']:.1f} MiB body of {scan['records']:,} records: "
          f"scan {scan['scan_ms']:.0f} ms, json.loads {scan['json_ms']:.0f} ms, ratio {scan['ratio']:.2f}")
    if args.scan_only:
        return 0

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "MLFLOW_TRACKING_URI": args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project / 'mlflow.db'}",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # mlflow models serve starts uvicorn by name
    script = bin_dir / "ttsctr-serve"
    guard_cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ttsctr.serve"]
    reqs = request_mix(records, args.requests, args.batch, args.seed)
    mix = Counter("good row" if r.kind == "good row" else "good batch" if r.kind == "good batch" else "malformed" for r in reqs)
    kinds = len(malformed(records))
    print(f"model {args.model_uri}; {len(records):,} good rows to draw from; {args.requests} requests: "
          f"{mix['good row']} good single rows, {mix['good batch']} good batches of {args.batch}, "
          f"{mix['malformed']} malformed of {kinds} kinds (seed {args.seed}); {os.cpu_count()} cpus")

    out: dict[str, Any] = {"scan": scan}
    failed = False
    with tempfile.TemporaryDirectory(prefix="ttsctr-load-") as tmp:
        logdir = Path(tmp)
        srv = start("ttsctr-serve", lambda p: [*guard_cmd, "-m", args.model_uri, "-p", str(p), "-h", "127.0.0.1"],
                    env, project, logdir)
        try:
            for label, clients in (("sequential", 1), (f"{args.clients} clients", args.clients)):
                results, wall = run(srv.port, reqs, clients)
                c = counts(results)
                five = sum(v for k, v in c.items() if not k.isdigit() or int(k) >= 500)
                bad_good = sum(1 for r in results if r.kind.startswith("good") and r.status != 200)
                bad_bad = sum(1 for r in results if not r.kind.startswith("good") and not (isinstance(r.status, int) and 400 <= r.status < 500))
                p50, p99 = pct(results)
                failed |= bool(five or bad_good or bad_bad)
                out[f"guard {label}"] = {"status_counts": c, "good_row_p50_ms": p50, "good_row_p99_ms": p99, "wall_s": wall}
                print(f"ttsctr-serve, {label:10s}: status {c}; 5xx or errors: {five}; good not 200: {bad_good}; "
                      f"malformed not 4xx: {bad_bad}; good single rows p50 {p50:.1f} ms, p99 {p99:.1f} ms; wall {wall:.1f} s")
            ping_ok = _ping(srv.port) and send(srv.port, reqs[[r.kind for r in reqs].index("good row")]).status == 200
            print(f"ttsctr-serve afterwards: /ping and a good row {'OK' if ping_ok else 'FAILED'}")
            failed |= not ping_ok
            by_kind: dict[str, Counter] = {}
            for r in results:
                by_kind.setdefault(r.kind, Counter())[str(r.status)] += 1
            out["guard status by kind (concurrent run)"] = {k: dict(v) for k, v in sorted(by_kind.items())}
        finally:
            stop(srv.proc)
        if not args.no_plain:
            good = [r for r in reqs if r.good]
            plain = start("mlflow-models-serve",
                          lambda p: [str(bin_dir / "mlflow"), "models", "serve", "-m", args.model_uri, "--env-manager",
                                     "local", "-p", str(p), "-h", "127.0.0.1"], env, project, logdir)
            try:
                for label, clients in (("sequential", 1), (f"{args.clients} clients", args.clients)):
                    results, wall = run(plain.port, good, clients)
                    p50, p99 = pct(results)
                    g = out[f"guard {label}"]
                    out[f"plain {label}"] = {"status_counts": counts(results), "good_row_p50_ms": p50, "good_row_p99_ms": p99,
                                             "wall_s": wall}
                    print(f"mlflow models serve, {label:10s} (the {len(good)} good requests): status {counts(results)}; "
                          f"good single rows p50 {p50:.1f} ms, p99 {p99:.1f} ms; wall {wall:.1f} s")
                    print(f"  ratio guard / plain, {label}: p50 {g['good_row_p50_ms'] / p50:.2f}, p99 {g['good_row_p99_ms'] / p99:.2f}")
                # a body declared but never sent: plain MLflow waits for it (until its 60 s timeout, then 504)
                reference = {r.kind: send(plain.port, r, timeout=5 if r.declared_length else REQUEST_S).status
                             for r in malformed(records)}
                out["plain malformed, one each"] = reference
                print("mlflow models serve, each malformed kind once: "
                      + ", ".join(f"{k}: {v}" for k, v in reference.items()))
            finally:
                stop(plain.proc)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print("FAILED: 5xx, errors, or a wrong status class" if failed else "OK: no 5xx, every good request 200, every malformed one 4xx")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
