"""Bad input stops `kedro run --pipelines data_processing` with a message a user can act on.

Every failing run must print the exception's message on stderr (naming the file, line and what
was expected where there is one), exit non-zero, leave no staging or temporary folder behind and
leave a previously published model input (a Criteo-format log published in the same project
before the failing runs) byte-for-byte untouched. Configuration mistakes that need no
subprocess to show are checked on the nodes directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dphelpers import (
    MODEL_INPUT,
    base_datasets,
    criteo_format_file,
    leftovers,
    new_project,
    one_line,
    run_dp,
    run_nodes,
    snapshot,
)

from ttsctr.errors import ConfigError, DataFormatError
from ttsctr.pipelines.data_processing import nodes


@dataclass
class Published:
    project: Path
    raw: Path
    before: dict  # snapshot of data/05_model_input (published criteo + its summary)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, mlflow_db: Path) -> Published:
    project = new_project(tmp_path_factory.mktemp("dp_bad"), None, mlflow_db)
    raw = criteo_format_file(tmp_path_factory.mktemp("raw") / "good.txt")
    run_nodes("criteo", str(raw), project / MODEL_INPUT, preprocessing={"min_count": 2})
    return Published(project, raw, snapshot(project / MODEL_INPUT))


def assert_failed_cleanly(pub: Published, proc, *, message: list[str], dataset: str = "criteo") -> str:
    assert proc.returncode != 0
    err = one_line(proc.stderr)
    for part in message:
        assert part in err, f"{part!r} not in stderr:\n{proc.stderr[-3000:]}"
    assert leftovers(pub.project) == []
    assert snapshot(pub.project / MODEL_INPUT) == pub.before  # previous version untouched
    if dataset != "criteo":
        assert not (pub.project / MODEL_INPUT / dataset).exists()
    return err


def test_unknown_dataset_lists_the_known_ones(published: Published) -> None:
    proc = run_dp(published.project, {"dataset": "criteoo"}, check=False, columns=80)  # a plain 80-column console
    assert_failed_cleanly(
        published, proc, dataset="criteoo",
        message=["Error: unknown dataset 'criteoo'; known datasets: avazu, criteo, kdd12, movielens, movielens_seq, synthetic, synthetic_seq"],
    )


def test_missing_raw_path_tells_the_user_to_pass_one(published: Published) -> None:
    proc = run_dp(published.project, {"dataset": "avazu"}, check=False)  # no data/01_raw/avazu/train.csv
    assert_failed_cleanly(
        published, proc, dataset="avazu",
        message=["Error: dataset 'avazu' needs a raw avazu file", "data/01_raw/avazu/train.csv does not exist",
                 'pass --params "dataset=avazu,raw_path=<file>"'],
    )


def test_raw_path_that_does_not_exist(published: Published) -> None:
    missing = published.raw.parent / "nope" / "train.txt"
    proc = run_dp(published.project, {"dataset": "criteo", "raw_path": missing}, check=False)
    assert_failed_cleanly(published, proc, message=[f"Error: raw_path '{missing}' for dataset 'criteo' does not exist"])


def test_wrong_field_count_names_file_and_line(published: Published, tmp_path: Path) -> None:
    """Line 2500 of 3000 has 39 fields. The raw GX sample (first 200 rows, read in 64 KiB
    blocks) passes, so the error comes from the encoder half-way through the file."""
    lines = published.raw.read_text().splitlines(keepends=True)
    bad_line = 2500
    lines[bad_line - 1] = lines[bad_line - 1].split("\t", 1)[1]  # drop the label: 39 fields
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(lines))
    proc = run_dp(
        published.project,
        {"dataset": "criteo", "raw_path": bad, "datasets.criteo.preprocessing.min_count": 2,
         "datasets.criteo.preprocessing.chunk_bytes": 65536, "validation.raw_sample_rows": 200},
        check=False,
    )
    err = assert_failed_cleanly(
        published, proc,
        message=[f"Error: {bad}, line {bad_line}: found 39 TAB-separated fields; expected 40 fields"],
    )
    assert "Completed node: validate_raw_data" in one_line(proc.stdout)  # it got past the raw sample
    assert "encode_to_staging" in err or "encode_to_staging" in one_line(proc.stdout)


# ---- the same mistakes on the nodes (no subprocess) -----------------------------------------
def test_bad_line_inside_the_raw_sample_stops_before_encoding(published: Published, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    lines = published.raw.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace("\t", "\tx", 1)  # line 7: I1 = 'x...' is not an integer
    bad.write_text("".join(lines[:50]))
    root = tmp_path / "05_model_input"
    with pytest.raises(DataFormatError) as exc:
        run_nodes("criteo", str(bad), root)
    assert exc.value.line == 7 and exc.value.field == "I1" and exc.value.path == str(bad)
    assert str(exc.value).startswith(f"{bad}, line 7, field 'I1': found ")
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.parametrize(
    "raw_path, message",
    [
        ([], "raw_path for dataset 'criteo' is an empty list"),
        ("{tmp}/*.nothing", "matches no file"),
        ("{tmp}", "is not a file; expected a criteo file"),
        (["{raw}", "{raw}"], "lists '{raw}' twice"),
        (3, "3 is not a file path"),
    ],
)
def test_raw_path_mistakes(published: Published, tmp_path: Path, raw_path, message: str) -> None:
    fill = lambda v: v.format(tmp=tmp_path, raw=published.raw) if isinstance(v, str) else v  # noqa: E731
    raw_path = [fill(v) for v in raw_path] if isinstance(raw_path, list) else fill(raw_path)
    with pytest.raises(ConfigError, match=None) as exc:
        nodes.resolve_raw_source("criteo", raw_path, base_datasets(), str(tmp_path / "out"))
    assert fill(message) in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_settings_mistakes_are_reported_before_reading(published: Published, tmp_path: Path) -> None:
    datasets = base_datasets()
    datasets["kdd12"]["reader_options"] = {"label": "clicks"}
    with pytest.raises(ConfigError, match=r"label='clicks' is not known; expected one of \['impression_expand', 'click_positive'\]"):
        nodes.resolve_raw_source("kdd12", str(published.raw), datasets, str(tmp_path))
    datasets = base_datasets()
    datasets["criteo"]["preprocessing"]["min_cnt"] = 2
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['min_cnt'\]"):
        nodes.resolve_raw_source("criteo", str(published.raw), datasets, str(tmp_path))
    datasets = base_datasets()
    datasets["criteo"]["preprocessing"]["split_ratios"] = [0.8, 0.3, 0.1]
    with pytest.raises(ConfigError, match="summing to 1"):
        nodes.resolve_raw_source("criteo", str(published.raw), datasets, str(tmp_path))


def test_movielens_without_its_side_files(tmp_path: Path) -> None:
    u_data = tmp_path / "u.data"
    u_data.write_text("1\t1\t5\t874965758\n")
    with pytest.raises(DataFormatError) as exc:
        nodes.resolve_raw_source("movielens", str(u_data), base_datasets(), str(tmp_path / "out"))
    assert exc.value.path == str(tmp_path / "u.user") and "MovieLens u.user next to u.data" in str(exc.value)


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(published: Published, tmp_path: Path) -> None:
    """A run killed mid-encode (SIGKILL: no cleanup) leaves its staging folder, the encoder's
    temporary folder or a set-aside previous version; the next run for the dataset removes them
    (only those of dead processes)."""
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    root = tmp_path / "05_model_input"
    stale = [f".staging-criteo-{pid}", f"..staging-criteo-{pid}.tmp-{pid}-0123abcd", f".criteo.old-{pid}-0123abcd"]
    alive = [f".staging-criteo-{os.getppid()}", f".staging-avazu-{pid}"]  # a live run's, another dataset's
    for name in stale + alive:
        (root / name).mkdir(parents=True)
        (root / name / "train.parquet").write_bytes(b"partial")
    run_nodes("criteo", str(published.raw), root, preprocessing={"min_count": 2}, until="encode")
    names = {p.name for p in root.iterdir()}
    assert not names & set(stale)
    assert set(alive) <= names
    assert f".staging-criteo-{os.getpid()}" in names  # this run's staged output, not yet validated


def test_a_run_that_finds_its_data_up_to_date_still_removes_a_killed_runs_staging(
    published: Published, tmp_path: Path
) -> None:
    """A run killed while its staged splits were being validated leaves ``.staging-<dataset>-<pid>``
    (no cleanup runs under SIGKILL). The next run — here one that finds the published data up to
    date and encodes nothing — removes it."""
    import shutil
    import signal
    import subprocess
    import sys

    root = tmp_path / "05_model_input"
    shutil.copytree(published.project / MODEL_INPUT, root)
    killed = subprocess.run(
        [sys.executable, "-c",
         "import os, signal, sys; from pathlib import Path; from dphelpers import run_nodes\n"
         "out = run_nodes('criteo', sys.argv[1], Path(sys.argv[2]), preprocessing={'min_count': 3}, until='encode')\n"
         "print(out['staged']['staging_dir'], flush=True)\n"
         "os.kill(os.getpid(), signal.SIGKILL)  # killed where validation of the staged splits starts\n",
         str(published.raw), str(root)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent,
        env={**__import__("os").environ, "PYTHONPATH": f"{Path(__file__).parent}:{Path(__file__).parents[2]}"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    staging = Path(killed.stdout.split()[-1])
    assert staging.parent == root and (staging / "train.parquet").is_file()
    again = run_nodes("criteo", str(published.raw), root, preprocessing={"min_count": 2})
    assert again["staged"]["staging_dir"] is None  # up to date: nothing encoded
    assert not staging.exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
