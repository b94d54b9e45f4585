"""albumgan installed as a user installs it: not editable, into a folder of its own.

``pip install --no-deps --target SITE .`` (the dev environment supplies the dependencies), then
``albumgan`` is run from a project folder that holds its own ``experiments/`` and ``reports/``
packages, as the issue that asked for one namespace found them: the install must put ``albumgan``
alone into site-packages, and the user's packages must not shadow ours (nor ours theirs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The project built and installed (not editable) into a fresh folder."""
    target = tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools leaves build/ and *.egg-info in the tree it builds, and a
    # build/ left from an earlier build would carry modules since deleted into the install.
    source = tmp_path_factory.mktemp("source") / "albumgan"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".*_cache", "tests"
    )
    shutil.copytree(ROOT, source, ignore=skip)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INDEX": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return target


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A user's folder with packages named like our subpackages used to be."""
    folder = tmp_path_factory.mktemp("project")
    for name in ("experiments", "reports"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(f"MINE = {name!r}\n")
    return folder


def _albumgan(site: Path, project: Path, cache_dir: str, *args: str, timeout: int = 300):
    env = {**os.environ, "PYTHONPATH": str(site), "ALBUMGAN_CACHE": cache_dir}
    env.pop("ALBUMGAN_RUN_DIR", None)
    return subprocess.run(
        [sys.executable, str(site / "bin" / "albumgan"), *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_site_packages_holds_albumgan_alone(site):
    top = sorted(p.name for p in site.iterdir() if p.name != "bin")
    assert [n for n in top if not n.endswith(".dist-info")] == ["albumgan"], top
    package = site / "albumgan"
    for sub in ("gan_core", "data_tools", "experiments", "sweeps", "reports"):
        assert (package / sub / "__init__.py").is_file(), sub
    # The data files travel with it: presets, templates, bundled sweeps, the chart list.
    assert (package / "experiments" / "configs" / "smoke.yaml").is_file()
    assert (package / "reports" / "templates" / "run.html.j2").is_file()
    assert (package / "sweeps" / "smoke.yaml").is_file()
    assert list((package / "data_tools" / "data").glob("*.csv"))


def test_train_sweep_and_report_from_a_folder_with_its_own_packages(site, project, cache_dir):
    # Our modules come from the install, the user's packages stay theirs.
    probe = (
        "import albumgan.gan_core, albumgan.reports.run_report, experiments, reports; "
        "print(albumgan.gan_core.__file__); print(experiments.MINE, reports.MINE)"
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{project}"}
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    where, mine = proc.stdout.splitlines()
    assert Path(where).is_relative_to(site) and mine == "experiments reports"

    train = _albumgan(
        site, project, cache_dir, "train", "--config", "smoke", "--steps=4", "--resolution=16",
        "--g_width=8", "--d_width=8", "--batch_size=4", "--log_every=2", "--sample_every=2",
        "--checkpoint_every=2", "--grid_size=2", "--precision=float32",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    run_dir = project / train.stdout.split("run_dir: ")[1].splitlines()[0]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"

    report = _albumgan(site, project, cache_dir, "report", "run", str(run_dir))
    assert report.returncode == 0, report.stderr
    assert (run_dir / "report" / "index.html").is_file()

    # The bundled sweep file, found by name; two of its four points, one per worker.
    sweep = _albumgan(
        site, project, cache_dir, "sweep", "run", "smoke", "--workers", "2", "--n-trials", "2"
    )
    assert sweep.returncode == 0, sweep.stderr
    assert "trials: 2 complete" in sweep.stdout
    trials = sorted((project / "runs" / "smoke").glob("trial-*"))
    assert len(trials) == 2, trials
    for trial in trials:
        status = json.loads((trial / "status.json").read_text())
        assert status["state"] == "completed", trial
