"""The entry point under an emulated `wandb agent`, with real wandb in offline mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--config=smoke",
    "--resolution=16",
    "--g_width=8",
    "--d_width=8",
    "--eval_every=10",
    "--eval_samples=32",
    "--precision=float32",
]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _clean_env(cache_dir: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {
        **env,
        "ALBUMGAN_CACHE": cache_dir,
        "HOME": str(home),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "WANDB_DISABLE_GIT": "true",
    }


def test_entry_point_under_an_emulated_agent_writes_an_offline_run(cache_dir, tmp_path):
    params = tmp_path / "sweep-params.yaml"  # what the agent writes for wandb.init()
    params.write_text("batch_size:\n  value: 8\nnoise_shape:\n  value: [1, 1, 32]\n")
    env = {
        **_clean_env(cache_dir, tmp_path),
        "WANDB_SWEEP_ID": "sweep42",
        "WANDB_RUN_ID": "run42",
        "WANDB_SWEEP_PARAM_PATH": str(params),
        "WANDB_MODE": "offline",
    }
    run_dir = tmp_path / "run"
    proc = _run(
        ["--batch_size=8", "--noise_shape=[1, 1, 32]", *TINY, f"--run-dir={run_dir}"],
        env,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    offline = list((run_dir / "wandb").glob("offline-run-*-run42"))
    assert len(offline) == 1
    record = (offline[0] / "run-run42.wandb").read_bytes()
    kids = [
        r["kid"]
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        if "kid" in r
    ]
    # The run's summary holds the sweep metric under its name, with the final value.
    assert b"\x03kid" in record and repr(kids[-1]).encode() in record
    assert b"sweep42" in record
    assert list((offline[0] / "files" / "media").rglob("*.png"))  # sample grids as wandb.Image


def _history(wandb_file: Path) -> dict[int, dict]:
    """The values logged per step in an offline run's ``.wandb`` file, read as W&B stores it:
    a 7-byte header (":W&B", 0xBEE1, version), then 32 KiB blocks of chunks, each a 7-byte header
    (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) before a slice of a ``Record``."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data = wandb_file.read_bytes()
    assert data[:4] == b":W&B"
    history: dict[int, dict] = {}
    offset, pending = 7, b""
    while offset + 7 <= len(data):
        left_in_block = 32768 - offset % 32768
        if left_in_block < 7:  # block trailer: zero padding
            offset += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        if kind == 0:
            break
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # a whole record
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                values = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                history.setdefault(int(values.get("_step", -1)), {}).update(values)
    return history


def test_no_api_key_falls_back_to_offline_and_logs_the_last_steps_losses(cache_dir, tmp_path):
    """No key, no netrc, no WANDB_MODE: one notice, an offline run; and with ``steps`` not a
    multiple of ``log_every`` the last step's losses are logged too, as metrics.jsonl has them."""
    env = _clean_env(cache_dir, tmp_path)
    run_dir = tmp_path / "run"
    flags = ["--steps=7", "--log_every=5", "--sample_every=0", "--eval_every=0"]
    proc = _run(["--wandb", *TINY, *flags, f"--run-dir={run_dir}"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("no API key configured: logging offline") == 1
    history = _history(next((run_dir / "wandb").glob("offline-run-*/run-*.wandb")))
    metrics = {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").open())}
    assert sorted(metrics) == [5, 7]
    for step in (5, 7):  # the same numbers at the same steps as metrics.jsonl
        for key in ("d_loss_real", "d_loss_fake", "g_loss", "img_per_s"):
            assert history[step][key] == pytest.approx(metrics[step][key]), (step, key)


def test_wandb_disabled_logs_nothing(cache_dir, tmp_path, monkeypatch):
    # The entry point's main in this process: whether it logs is read from the environment.
    from albumgan.experiments.train import main

    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SWEEP_ID", "s")  # as under `wandb agent`
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    assert main([*TINY, "--steps=10", f"--run-dir={run_dir}"]) == 0
    assert not (run_dir / "wandb").exists() and not (tmp_path / "wandb").exists()


def test_sweep_trials_write_offline_runs_grouped_by_study(cache_dir, tmp_path, monkeypatch):
    """`albumgan sweep run --wandb`: every trial leaves an offline W&B run in the study's group,
    so one `wandb sync` later shows the whole sweep."""
    import yaml
    from wandb.proto import wandb_internal_pb2 as pb

    from albumgan.sweeps.runner import run_sweep

    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    for key, value in _clean_env(cache_dir, tmp_path).items():
        monkeypatch.setenv(key, value)
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep["parameters"].update(noise_shape={"value": [1, 1, 16]}, steps={"value": 10})
    path = tmp_path / "wb.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "wbgroup", str(tmp_path / "wb.journal"), runs_dir=tmp_path, wandb=True)
    runs = [Path(t.user_attrs["run_dir"]) for t in study.trials if t.value is not None]
    assert len(runs) == 2
    for run_dir in runs:
        offline = list((run_dir / "wandb").glob("offline-run-*"))
        assert len(offline) == 1, run_dir
        record = next(offline[0].glob("run-*.wandb")).read_bytes()
        # RunRecord.run_group = "wbgroup", as protobuf bytes: tag (field << 3 | 2), length, text
        field = pb.RunRecord.DESCRIPTOR.fields_by_name["run_group"].number
        assert bytes([field << 3 | 2, len(b"wbgroup")]) + b"wbgroup" in record
        assert b"\x03kid" in record  # the summary holds the sweep metric
