"""A real study for the report tests: the smoke sweep (3 trials, one of which diverges), run once
per session; its trial run directories double as the runs of the run and compare reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from albumgan.sweeps.runner import run_sweep

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def study(cache_dir, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("report-study")
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep["parameters"].update(
        noise_shape={"value": [1, 1, 16]},
        batch_size={"values": [4, 8]},
        lr_g={"values": [0.0002, 1e30]},  # 1e30: the diverging trial
        steps={"value": 20},
    )
    path = folder / "report_smoke.yaml"
    path.write_text(yaml.safe_dump(sweep))
    journal = folder / "study.journal"
    optuna_study = run_sweep(path, "rs", str(journal), runs_dir=folder / "runs")
    runs = sorted(
        Path(t.user_attrs["run_dir"])
        for t in optuna_study.trials
        if t.user_attrs.get("state") == "completed"
    )
    assert len(runs) == 2, [t.user_attrs for t in optuna_study.trials]
    return {"journal": str(journal), "name": "rs", "runs": runs, "folder": folder}


@pytest.fixture(scope="session")
def replicated_study(cache_dir, tmp_path_factory) -> dict:
    """The smoke grid cut to 2 batch sizes, each on 2 seeds: 4 real tiny runs."""
    folder = tmp_path_factory.mktemp("replicated-study")
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep["parameters"].update(
        seed={"values": [0, 1]}, steps={"value": 10}, noise_shape={"value": [1, 1, 16]}
    )
    path = folder / "replicated.yaml"
    path.write_text(yaml.safe_dump(sweep))
    journal = folder / "study.journal"
    run_sweep(path, "rep", str(journal), runs_dir=folder / "runs")
    return {"journal": str(journal), "name": "rep", "folder": folder}
