"""Sweep pruning: the same 12-trial tiny study with and without the hyperband pruner.

    python benchmarks/sweep_pruning.py [--trials 12] [--steps 160]

Both studies sample the same learning rates (RandomSampler, same seed) for the tiny 16 px smoke
model on the synthetic covers, scoring KID every ``steps / 16`` steps. Prints the total trial-steps
each study spent and the best KID of each. Target: pruned <= 50% of the unpruned compute with
its best KID within 10%.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from albumgan.sweeps.runner import run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def sweep_file(folder: Path, trials: int, steps: int, prune: bool) -> Path:
    spec = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    spec.update(method="random", run_cap=trials)
    spec["parameters"].update(
        batch_size={"value": 8},
        noise_shape={"value": [1, 1, 32]},
        steps={"value": steps},
        eval_every={"value": steps // 16},
        log_every={"value": steps // 16},
        sample_every={"value": steps},
        checkpoint_every={"value": steps},
        lr_g={"distribution": "log_uniform_values", "min": 1e-5, "max": 3e-3},
        lr_d={"distribution": "log_uniform_values", "min": 1e-5, "max": 3e-3},
    )
    if prune:
        spec["early_terminate"] = {"type": "hyperband", "min_iter": 1, "eta": 3}
    path = folder / f"{'pruned' if prune else 'full'}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def measure(folder: Path, trials: int, steps: int, prune: bool) -> tuple[int, float, float]:
    path = sweep_file(folder, trials, steps, prune)
    start = time.perf_counter()
    study = run_sweep(path, path.stem, str(folder / f"{path.stem}.journal"), runs_dir=folder)
    seconds = time.perf_counter() - start
    trial_steps = 0
    for trial in study.trials:
        status = folder / path.stem / f"trial-{trial.number:04d}" / "status.json"
        if status.exists():
            trial_steps += json.loads(status.read_text()).get("step", 0)
    best = min((t.value for t in study.trials if t.value is not None), default=float("nan"))
    return trial_steps, best, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=160)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="albumgan-prune-") as tmp:
        full = measure(Path(tmp), args.trials, args.steps, prune=False)
        pruned = measure(Path(tmp), args.trials, args.steps, prune=True)
    for label, (steps, best, seconds) in (("no pruning", full), ("hyperband", pruned)):
        print(f"{label:<11} trial-steps {steps:>6}  best KID {best:.4f}  ({seconds:.0f} s)")
    print(f"compute_ratio={pruned[0] / full[0]:.2f} best_kid_ratio={pruned[1] / full[1]:.2f}")


if __name__ == "__main__":
    main()
