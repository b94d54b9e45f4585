"""``albumgan train --resume RUN_DIR`` and ``--run-dir`` of an existing run go on from the run's
own config.yaml: the arguments change only the keys they name, and only resumable ones;
``--resume`` with nothing to resume says so (the command's ``main``, in this process: a tiny
run takes seconds here and a subprocess would mostly import the framework)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albumgan.experiments.train import main, parse_args

TINY = (
    "--config smoke --resolution=16 --g_width=8 --d_width=8 --noise_shape=16 --batch_size=4 "
    "--log_every=3 --checkpoint_every=3 --eval_every=0 --grid_size=2"
).split()


@pytest.fixture
def trained(tmp_path, cache_dir) -> str:
    """A completed 6-step run whose sample interval (3) is not the preset's (10)."""
    run_dir = str(tmp_path / "run")
    assert main([*TINY, "--steps=6", "--sample_every=3", f"--run-dir={run_dir}"]) == 0
    return run_dir


def test_an_existing_run_goes_on_from_its_own_config(trained, capsys):
    for argv in (["--resume", trained], [f"--run-dir={trained}"]):
        cfg, options = parse_args([*argv, "--steps=9"])
        assert options.run_dir == trained
        assert (cfg.steps, cfg.sample_every, cfg.resolution, cfg.g_width) == (9, 3, 16, 8)
    # The preset again: it changes nothing the first run's flags set, and says so.
    capsys.readouterr()
    cfg, _ = parse_args(["--config", "smoke", f"--run-dir={trained}", "--steps=9"])
    assert (cfg.sample_every, cfg.resolution) == (3, 16)
    note = capsys.readouterr().err
    assert "goes on from its own config.yaml" in note and "sample_every" in note
    # Trained on: from step 6 to 9, with the run's own intervals; a metrics line damaged on
    # disk (bytes that are not UTF-8) is dropped on the way, never a crash.
    with (Path(trained) / "metrics.jsonl").open("ab") as log:
        log.write(b'{"step": 5, "g_loss": "\xff\xfe"}\n')
    assert main(["--resume", trained, "--steps=9"]) == 0
    assert b"\xff" not in (Path(trained) / "metrics.jsonl").read_bytes()
    status = json.loads((Path(trained) / "status.json").read_text())
    assert (status["state"], status["step"], status["resumed_from"]) == ("completed", 9, 6)
    assert "sample_every: 3\n" in (Path(trained) / "config.yaml").read_text()


def test_resume_changes_only_resumable_keys_and_never_starts_a_new_run(trained, tmp_path, capsys):
    capsys.readouterr()
    assert main(["--resume", trained, "--g_width=16"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "trained with a different config (g_width: 8 -> 16)" in line
    empty = tmp_path / "nothing-here"
    assert main([*TINY, f"--runs_dir={empty}", "--resume"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --resume: no unfinished run named 'smoke'")
    assert not empty.exists()
    assert main(["--resume", str(tmp_path / "typo")]) == 2
    assert "not a run directory" in capsys.readouterr().err
