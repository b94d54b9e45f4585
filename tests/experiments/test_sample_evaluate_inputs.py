"""`albumgan sample` and `albumgan evaluate` on big or bad input: bounded memory, one-line errors.

One tiny run (the ``tiny_cfg`` settings, 16 px) is trained per module and shared. The memory test
reads each sampling process's peak RSS from the kernel (``ru_maxrss``), not a timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albumgan import train
from albumgan.data_tools.synthetic import generate_cover
from albumgan.experiments.evaluate import evaluate
from albumgan.gan_core.sampling import generate, load_sampler

ROOT = Path(__file__).resolve().parents[2]
RESOLUTION = 16

# Runs ARGV as a child and prints its exit code and peak RSS (KiB on Linux). RUSAGE_CHILDREN is
# the largest over all of a process's children, so each measurement gets a fresh wrapper.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@pytest.fixture(scope="module")
def run_dir(make_tiny_cfg, tmp_path_factory) -> Path:
    """A finished 12-step run of the tiny config (conftest), shared by this module."""
    cfg = make_tiny_cfg(tmp_path_factory.mktemp("runs"))
    assert cfg.resolution == RESOLUTION
    return train(cfg).run_dir


def _cli(cache_dir: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m albumgan.experiments.cli ARGS`` from the repository root; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", *args],
        cwd=ROOT,
        env={**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """Our error lines (TensorFlow's own start-up log lines may share stderr)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def _sample_peak_mib(cache_dir: str, run: Path, n: int, out: Path) -> float:
    args = [sys.executable, "-m", "albumgan.experiments.cli", "sample", str(run), "--n", str(n)]
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *args, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    rc, peak_kib = proc.stdout.split()[-2:]
    assert rc == "0", proc.stderr
    assert len(list(out.iterdir())) == n
    return int(peak_kib) / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_sample_memory_does_not_grow_with_n(run_dir, cache_dir, tmp_path):
    small, large = 64, 10_000
    small_peak = _sample_peak_mib(cache_dir, run_dir, small, tmp_path / "small")
    large_peak = _sample_peak_mib(cache_dir, run_dir, large, tmp_path / "large")
    # Holding the large sample's float32 outputs once: 10,000 x 16 x 16 x 3 x 4 B = 29 MiB.
    # Sampling it all in memory grew the peak by ~150 MiB (several such copies); chunked, 2-9 MiB
    # (the allocator's noise: 8.6 MiB seen once under a busy suite).
    held_mib = large * RESOLUTION * RESOLUTION * 3 * 4 / 2**20
    growth = large_peak - small_peak
    assert growth < held_mib / 2, f"peak RSS {small_peak:.0f} -> {large_peak:.0f} MiB"


def test_chunked_sampling_keeps_the_images_of_a_seed(run_dir):
    generator = load_sampler(run_dir)
    many = generate(generator, 150, seed=3)  # three chunks, the last one partial
    assert many.shape == (150, RESOLUTION, RESOLUTION, 3) and many.dtype == np.uint8
    np.testing.assert_array_equal(generate(generator, 70, seed=3), many[:70])
    assert not np.array_equal(generate(generator, 70, seed=4), many[:70])


def test_sample_out_naming_a_file_is_one_line_and_leaves_it(run_dir, cache_dir, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_bytes(b"my notes\n")
    before = target.stat()
    proc = _cli(cache_dir, "sample", str(run_dir), "--n", "3", "--out", str(target))
    assert proc.returncode == 2
    assert _error_lines(proc) == [f"error: --out {target}: is a file, not a folder"]
    assert target.read_bytes() == b"my notes\n"
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_sample_replaces_only_its_own_names(run_dir, cache_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.png").write_bytes(b"not an image of ours")
    (out / "sample_00000.png").write_bytes(b"an earlier sample")
    proc = _cli(cache_dir, "sample", str(run_dir), "--n", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "mine.png").read_bytes() == b"not an image of ours"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["mine.png", "sample_00000.png", "sample_00001.png"]
    with Image.open(out / "sample_00000.png") as image:
        assert image.size == (RESOLUTION, RESOLUTION)


def _grid_folder(tmp_path: Path, size: int) -> Path:
    folder = tmp_path / "grids"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "grid.png")
    return folder


def _real_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "real"
    folder.mkdir()
    for i in range(10):
        generate_cover(i, size=RESOLUTION, seed=2).save(folder / f"c{i:03d}.png")
    return folder


def test_evaluate_refuses_grid_tiles_under_8_px(cache_dir, tmp_path):
    grids = _grid_folder(tmp_path, 64)
    args = ["evaluate", "--real", str(_real_folder(tmp_path)), "--fake", str(grids)]
    proc = _cli(cache_dir, *args, "--grid", "100x100", "--resolution", str(RESOLUTION))
    assert proc.returncode == 2
    [line] = _error_lines(proc)
    assert "--grid 100x100" in line and "64x64 px" in line and "0.64x0.64 px tiles" in line
    assert "at least 8 px" in line


def test_evaluate_takes_grid_tiles_of_8_px(tmp_path):
    grids = _grid_folder(tmp_path, 64)
    real = _real_folder(tmp_path)
    scores = evaluate(real, grids, RESOLUTION, grid="8x8", cache_dir=tmp_path / "cache")
    assert scores["n_fake"] == 64
    with pytest.raises(ValueError, match="7.11111x7.11111 px tiles"):
        evaluate(real, grids, RESOLUTION, grid="9x9", cache_dir=tmp_path / "cache")
