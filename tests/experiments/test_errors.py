"""Every command's user errors: one line on stderr (``error: ...``) and the documented exit code.

One error type (``gan_core.contract.AlbumganError``, with its exit code) and one handler per
command: no traceback for a user's mistake, and no ``except ValueError`` that would hide a bug.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--config", "smoke", "--resolution=16", "--g_width=8", "--d_width=8", "--batch_size=4",
        "--precision=float32", "--steps=10", "--grid_size=2"]  # fmt: skip


def _albumgan(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_missing_inception_weights_fail_the_run_before_its_first_step(
    tmp_path, cache_dir, capsys, monkeypatch
):
    """A start-up failure: exit 2, one line, status.json `failed` with the reason, and nothing
    written but the run's config and status (no step, no grid, no checkpoint). The command's
    main in this process: what it prints does not depend on the process (the tests below run
    the others as subprocesses)."""
    from albumgan.experiments.cli import main

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))  # empty: no InceptionV3
    run_dir = tmp_path / "run"
    capsys.readouterr()
    argv = ["train", *TINY, "--eval_every=5", "--eval_extractor=inception", f"--run-dir={run_dir}"]
    assert main(argv) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert line.startswith("error: ")
    assert "InceptionV3 weights not found" in line and "fetch-weights" in line
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["exit_code"] == 2
    assert "InceptionV3 weights not found" in status["message"]
    assert status["step"] == 0
    files = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()}
    assert files <= {"config.yaml", "status.json", "writer.lock"}, files
    # The report tells it as it is: failed, not "stalled" (in this process: the command's own
    # tests are the reports').
    from albumgan.reports.run_report import run_report

    assert "State: failed" in (run_report(run_dir).parent / "report.md").read_text()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Bad inputs of each kind, made once."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "a-file.txt").write_text("not a folder\n")
    (folder / "empty").mkdir()
    sweep = {"method": "grid", "metric": {"name": "kid"}, "parameters": {"lr": {"values": [1]}}}
    (folder / "bad-sweep.yaml").write_text(yaml.safe_dump(sweep))
    return folder


# (argv, exit code, what the line must say). Paths are relative to the `inputs` folder.
CASES = [
    (["train", "--nonsense=1"], 2, "unknown config key 'nonsense'"),
    (["train", "--config", "smoke", "--dataset=empty"], 2, "empty"),
    (["train", "--steps"], 2, "steps: missing value"),
    (["nonsense"], 2, "unknown command 'nonsense'"),
    (["sample", "empty"], 2, "is not a run directory"),
    (["sample", "empty", "--n", "0"], 2, "--n: 0 is outside 1 .."),
    (["sample"], 2, "the following arguments are required: run_dir"),
    (["evaluate", "--real", "synthetic", "--fake", "empty", "--grid", "8"], 2, "--grid must"),
    (["evaluate", "--real", "synthetic", "--fake", "empty"], 2, "no images in"),
    (["sweep", "validate", "bad-sweep.yaml"], 2, "lr"),
    (["sweep", "validate", "no-such.yaml"], 2, "no such sweep file"),
    (["sweep", "status", "--storage", "none.journal", "--study", "x"], 2, "no such journal"),
    (["report", "run", "empty"], 2, "is not a run directory"),
    (["report", "compare", "empty"], 2, "at least two"),
    (["data", "prepare", "a-file.txt", "--out", "out"], 2, "SRC must be a folder"),
    (["data", "prepare", "empty", "--out", "out", "--exclude", "none.txt"], 2, "none.txt"),
    (["data", "crawl", "--out", "c", "--engine-url", "ftp://x/{keyword}"], 2, "http"),
    (["data", "gaon", "--out", "g", "--source", "nowhere"], 2, "--source: expected"),
    (["data", "gaon", "--out", "g", "--source-url", "itunes"], 2, "expected NAME=URL"),
    (["data", "synth", "--out", "s", "--n", "0"], 2, "--n: 0 is outside 1 .."),
]


@pytest.mark.parametrize(("argv", "code", "says"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_each_command_says_what_is_wrong_in_one_line(
    argv, code, says, inputs, cache_dir, error_line
):
    proc = _albumgan(inputs, *argv)
    assert says in error_line(proc, code)
