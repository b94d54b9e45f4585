"""A training run's stderr: no framework notices read as errors; real errors kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from albumgan.experiments import quiet
from albumgan.gan_core.contract import shown

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ("oneDNN", "E0000", "I0000", "absl::InitializeLog", "cpu_feature_guard")


def _filtered(text: bytes, chunk: int) -> bytes:
    """``text`` through the filter process, written ``chunk`` bytes at a time."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", quiet.__file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    for start in range(0, len(text), chunk):
        proc.stdin.write(text[start : start + chunk])
        proc.stdin.flush()
    proc.stdin.close()
    out = proc.stdout.read()
    assert proc.wait(timeout=10) == 0
    return out


def test_the_filter_drops_exactly_the_harmless_notices():
    harmless = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        b"I0000 00:00:1795677818.575841   29172 port.cc:153] oneDNN custom operations are on. "
        b"You may see slightly different numerical results due to floating-point round-off.",
        b"E0000 00:00:1795677873.050250   29326 util.cc:131] oneDNN supports DT_INT64 only on "
        b"platforms with AVX-512. Falling back to the default Eigen-based implementation.",
        b"E0000 00:00:1764147000.123456    4242 meta_optimizer.cc:967] remapper failed: "
        b"INVALID_ARGUMENT: Mutation::Apply error: fanout 'x' exist for missing node 'y'.",
    ]
    kept = [
        b"E0000 00:00:1795677873.050250   29326 bfc_allocator.cc:1] Out of memory allocating",
        b"W0000 00:00:1795677873.050250   29326 op_kernel.cc:1] Not found: checkpoint",
        b"Traceback (most recent call last):",
        b"error: unknown config key 'bogus'",
        b"Epoch 1\rEpoch 2\rIn progress",
        "KID 1.475, ümlaut".encode(),
    ]
    text = b"".join(line + b"\n" for pair in zip(harmless, kept) for line in pair)
    text += b"".join(line + b"\n" for line in kept[len(harmless) :]) + b"no newline at the end"
    expected = b"".join(line + b"\n" for line in kept) + b"no newline at the end"
    for chunk in (len(text), 7, 1):  # lines split across reads are judged whole
        assert _filtered(text, chunk) == expected


def _train(args: list[str], cache_dir: str, cwd: Path, **env: str):
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train.py"), *args],
        cwd=cwd,
        env={**clean, "ALBUMGAN_CACHE": cache_dir, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_smoke_run_prints_no_framework_notices_and_kid_as_its_files_hold_it(cache_dir, tmp_path):
    """As a user starts it: no TF_CPP_MIN_LOG_LEVEL in the environment, from another folder."""
    flags = ["--config=smoke", "--steps=4", "--resolution=16", "--g_width=8", "--d_width=8"]
    run_dir = tmp_path / "run"
    run = _train([*flags, "--eval_every=4", f"--run-dir={run_dir}"], cache_dir, tmp_path)
    assert run.returncode == 0, run.stderr
    assert not [line for line in run.stderr.splitlines() if any(n in line for n in NOTICES)]
    assert "state: completed" in run.stdout
    kid = json.loads((run_dir / "best.json").read_text())["kid"]  # the raw value, as in files
    assert f"  KID {shown(kid)}" in run.stdout and "1e3" not in run.stdout
    # The same start with every framework line shown: what the filter took away was there.
    loud = _train([*flags, "--dry-run"], cache_dir, tmp_path, ALBUMGAN_FRAMEWORK_LOGS="all")
    assert loud.returncode == 0, loud.stderr
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        # Which notices TensorFlow prints depends on the CPU (oneDNN's only where it is on by
        # default, e.g. with AVX-512); some always are.
        assert any(notice in loud.stderr for notice in NOTICES), loud.stderr
    # A real error still reaches the user, before the process has ended.
    bad = _train(["--config=smoke", "--ema=2"], cache_dir, tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ema: expected False, True")
