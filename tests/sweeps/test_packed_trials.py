"""Sweeps on JAX pack (``sweeps.trial``, ``sweeps.packs``): a random sweep's replicate seeds are
one trainer process per trial, each seed in its own run directory as before; ``--pack`` trains
several grid points in one trainer and prunes one of them alone.

Marked ``backend_contract`` and run in the JAX part of ``make test`` only (packing is JAX's).
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from albumgan.sweeps import runner
from albumgan.sweeps.runner import run_sweep
from albumgan.sweeps.spec import load_spec, resolve_program

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backend_contract


@pytest.fixture
def jax_session(backend_name):
    if backend_name != "jax":
        pytest.skip("packing is JAX's: run in the JAX part of make test")


def test_a_replicated_trial_is_one_trainer_process_on_jax(jax_session, cache_dir, tmp_path):
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep.update(method="random", run_cap=1)
    sweep["parameters"].update(
        seed={"values": [0, 1, 2]}, backend={"value": "jax"}, batch_size={"values": [4, 8]},
        noise_shape={"value": [1, 1, 16]}, steps={"value": 10}, eval_every={"value": 10},
        log_every={"value": 5}, sample_every={"value": 10}, checkpoint_every={"value": 10},
    )  # fmt: skip
    path = tmp_path / "packed.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "pk", str(tmp_path / "study.journal"), runs_dir=tmp_path / "runs")
    (trial,) = study.trials
    assert trial.user_attrs["state"] == "completed", trial.user_attrs
    assert trial.user_attrs["packed"] is True
    run_dir = Path(trial.user_attrs["run_dir"])
    members = [run_dir / f"seed-{s}" for s in (0, 1, 2)]
    statuses = [json.loads((m / "status.json").read_text()) for m in members]
    assert {s["state"] for s in statuses} == {"completed"} and {
        s["backend"] for s in statuses
    } == {"jax"}
    assert len({s["pid"] for s in statuses}) == 1  # one trainer process for the three seeds
    assert json.loads((run_dir / "replicas.json").read_text())["seeds"] == [0, 1, 2]
    assert "--seed=[0, 1, 2]" in trial.user_attrs["argv"]
    # The trial's value is the mean of its seeds' last scores, as for unpacked replicates.
    replicates = trial.user_attrs["replicates"]
    assert [r["seed"] for r in replicates] == [0, 1, 2]
    assert trial.value == pytest.approx(sum(r["value"] for r in replicates) / 3)
    for member in members:
        assert (member / "generator.keras").is_file() and (member / "config.yaml").is_file()


class _PruneOne(optuna.pruners.BasePruner):
    """Prunes the trial with lr_d=4e-4 at its first report: which member stops is certain."""

    def prune(self, study, trial) -> bool:
        return trial.params.get("lr_d") == 4e-4 and trial.last_step is not None


def test_pack_trains_grid_points_as_one_process_and_prunes_one_alone(
    jax_session, cache_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(runner, "make_pruner", lambda spec: _PruneOne())
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep["parameters"].update(
        lr_d={"values": [1e-4, 2e-4, 4e-4]}, backend={"value": "jax"},
        batch_size={"value": 4}, noise_shape={"value": [1, 1, 16]}, steps={"value": 24},
        eval_every={"value": 4}, log_every={"value": 4}, sample_every={"value": 24},
        checkpoint_every={"value": 24},
    )  # fmt: skip
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(sweep))
    journal = str(tmp_path / "study.journal")
    study = runner.run_sweep(path, "pg", journal, runs_dir=tmp_path / "runs", pack=3)
    by_lr = {t.params["lr_d"]: t for t in study.trials}
    assert sorted(by_lr) == [1e-4, 2e-4, 4e-4] and len(study.trials) == 3
    statuses = {lr: json.loads((Path(t.user_attrs["run_dir"]) / "status.json").read_text())
                for lr, t in by_lr.items()}  # fmt: skip
    assert len({s["pid"] for s in statuses.values()}) == 1  # one trainer for the three points
    pruned = by_lr[4e-4]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs["state"] == "pruned"
    # Pruned at its first report (step 4); the trainer stops it at a later boundary, long
    # before the others' step 24 (the worker polls every 0.5 s; 5 more evaluations take
    # seconds).
    assert statuses[4e-4]["state"] == "interrupted" and statuses[4e-4]["step"] < 24
    assert not (Path(pruned.user_attrs["run_dir"]) / "stop.request").exists()
    for lr in (1e-4, 2e-4):  # the others trained on to the end, each its own value
        trial = by_lr[lr]
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
        assert statuses[lr]["state"] == "completed" and statuses[lr]["step"] == 24
        log = Path(trial.user_attrs["run_dir"]) / "metrics.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert trial.value == pytest.approx([r["kid"] for r in records if "kid" in r][-1])


def test_a_grids_seeds_pack_by_default_on_jax(monkeypatch):
    spec = load_spec(ROOT / "sweeps" / "seed_grid_replicated.yaml")
    program = resolve_program(spec.program)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert runner.default_pack(spec, program) == 3  # its seed values: 0, 1, 2
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert runner.default_pack(spec, program) == 1
    smoke = load_spec(ROOT / "sweeps" / "smoke.yaml")  # no seed axis: nothing to pack
    assert runner.default_pack(smoke, resolve_program(smoke.program)) == 1
