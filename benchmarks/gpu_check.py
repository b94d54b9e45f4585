"""The GPU check: the trainer's own speed on this machine, as one JSON object.

    python benchmarks/gpu_check.py                 # ~5 minutes on one H100/H200
    python benchmarks/gpu_check.py --quick         # a rehearsal of every part, on any machine
    python benchmarks/gpu_check.py --packed        # packed runs only (issue #21), ~6 minutes
    python benchmarks/gpu_check.py --recipe        # the harness picks the recipe (#24), ~8 min

It prints the JSON object and writes it to ``--out`` (default ``$OUT/gpu_check.json`` when
``$OUT`` is set), after every part, so a run cut short still leaves what it measured:

1. ``device``: what JAX computes on, and the versions.
2. ``trainer``: img/s of the trainer itself (``gan_core.train``: batches drawn on the device,
   metrics logged, status written and grids saved every 100 steps; evaluation and periodic
   checkpoints off, the seed_popular16 part has them) for the seed networks at 64 px, batch
   16/64/256, float32 and mixed_bfloat16. Timed from the end of the first (compiling) execution
   to the end of the last, callbacks included; beside it the share of the step-alone figure
   measured on an H200 (issue #10's table).
3. ``seed_popular16``: the seed's first run (its preset) on the synthetic covers, 10,000 steps,
   wall time from process start until ``generator.keras`` exists; ``backend: auto``, so it also
   shows what auto picks here.
4. ``sweep``: the 4-trial smoke sweep with ``--workers 1`` and ``--workers 4`` sharing the GPU:
   wall time, trials per hour, and the speedup.

``--packed`` runs two other parts instead (``gan_core.packing``):

5. ``packed_seeds``: 16 seeds of ``seed_popular16`` (10,000 steps, batch 16, float32, synthetic
   covers) as ONE packed run against seed 0 alone, each a trainer process timed from start to
   exit; ``runs_per_gpu_second_gain`` = 16 x (one run's wall / the pack's wall), goal >= 8; and
   how closely the packed seed 0 follows the single one (largest relative loss difference).
6. ``replicated_sweep``: ``sweeps/seed_grid_replicated.yaml`` on the synthetic covers with 1,000
   steps, end to end packed (a grid's seeds pack by default on JAX) and with ``--pack 1``, and
   how many trainer processes each used.

``--recipe`` runs one part instead (issue #24), on ``--data`` (default ``.covers/``, a folder
made by ``albumgan data prepare`` that git ignores; else the synthetic covers):

7. ``recipe``: ``sweeps/recipe_bayes.yaml`` (each configuration on 3 seeds packed, 4 workers on
   the GPU, hyperband) for at most RECIPE_SWEEP_S seconds, the study's sweep report, then
   today's ``modern`` against the sweep's winner on 3 seeds each at modern's own budget of images
   (``benchmarks/quality.py --packed``, at most RECIPE_VERDICT_S seconds), the harness's grouped
   verdict on their final KIDs and the compare report; ``recipe_runs.tar.gz`` beside the JSON
   holds the runs' metrics, configs, last grids and both reports (no checkpoints).

``targets`` says which of the issue's targets each number meets. Needs JAX (with CUDA for the real
check) and the project's other dependencies; on a bare GPU machine carry keras, optree, namex and
optuna (with alembic, sqlalchemy, colorlog, mako) as wheels (README, "Performance").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Step alone, Keras 3 on JAX, one H200 (issue #10): img/s by (batch, precision).
STEP_ALONE = {
    (16, "float32"): 3908,
    (64, "float32"): 14834,
    (256, "float32"): 21491,
    (64, "mixed_bfloat16"): 19682,
    (256, "mixed_bfloat16"): 39265,
}
TARGET_SHARE = 0.80
TARGETS = {
    "trainer_b16_float32_img_per_s": 3100,
    "trainer_b256_bf16_img_per_s": 31000,
    "seed_popular16_wall_s": 90,
    "sweep_speedup_4_vs_1_workers": 2.5,
    "packed_runs_per_gpu_second_gain": 8.0,  # 16 seeds packed in <= 2x one run's wall
}


class Report:
    """The JSON object, rewritten after every part."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def put(self, key: str, value) -> None:
        self.data[key] = value
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def part(report: Report, name: str, fn, *args) -> None:
    started = time.perf_counter()
    try:
        report.put(name, fn(*args))
    except Exception:  # noqa: BLE001 - a broken part is reported, the others still run
        report.put(name, {"error": traceback.format_exc(limit=6)[-3000:]})
    print(f"[gpu_check] {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# 1. Device
# ------------------------------------------------------------------------------------------------


def device() -> dict:
    import jax
    import keras

    from albumgan.gan_core.steps import device_name

    dev = jax.devices()[0]
    return {
        "name": device_name(),
        "platform": dev.platform,
        "compute_capability": getattr(dev, "compute_capability", None),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "python": sys.version.split()[0],
    }


# ------------------------------------------------------------------------------------------------
# 2. The trainer's own throughput
# ------------------------------------------------------------------------------------------------


def trainer(workdir: Path, quick: bool) -> dict:
    from albumgan import TrainConfig, load_data
    from albumgan.gan_core.run import Callback
    from albumgan.gan_core.training import train

    class Clock(Callback):
        """(time, step) at the end of every execution, after the callbacks before it."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_steps_end(self, run, step, logs) -> None:
            self.marks.append((time.perf_counter(), step))

    steps_for = {16: 1500, 64: 800, 256: 400} if not quick else {16: 30, 64: 20, 256: 10}
    batches = (16, 64, 256) if not quick else (16, 64)
    base = dict(
        dataset="synthetic", arch="seed", resolution=64, noise_shape=(1, 1, 100),
        backend="jax", log_every=100, sample_every=100, checkpoint_every=0, eval_every=0,
        runs_dir=str(workdir / "runs"), cache_dir=str(workdir / "cache"),
    )  # fmt: skip
    if quick:
        base.update(g_width=16, d_width=16, log_every=10, sample_every=10)
    data = load_data(TrainConfig(**base))
    results = {}
    for precision in ("float32", "mixed_bfloat16"):
        for batch in batches:
            cfg = TrainConfig(**base, batch_size=batch, steps=steps_for[batch],
                              precision=precision, name=f"b{batch}-{precision}")  # fmt: skip
            clock = Clock()
            started = time.perf_counter()
            result = train(cfg, data, [clock])
            (t0, s0), (t1, s1) = clock.marks[0], clock.marks[-1]
            img_per_s = (s1 - s0) * batch / (t1 - t0)
            status = json.loads((result.run_dir / "status.json").read_text())
            key = f"b{batch}_{'bf16' if precision != 'float32' else 'float32'}"
            results[key] = {
                "img_per_s": round(img_per_s, 1),
                "steps_timed": s1 - s0,
                "step_only_img_per_s": status.get("img_per_s"),  # compiled executions alone
                "share_of_step_alone": round(img_per_s / STEP_ALONE[(batch, precision)], 3)
                if (batch, precision) in STEP_ALONE
                else None,
                "first_execution_s": round(clock.marks[0][0] - started, 2),
                "state": result.state,
                "precision": status.get("precision"),
            }
            print(f"[gpu_check] trainer {key}: {results[key]}", file=sys.stderr)
    return results


# ------------------------------------------------------------------------------------------------
# 3. seed_popular16, process start to generator.keras
# ------------------------------------------------------------------------------------------------


def seed_popular16(workdir: Path, quick: bool) -> dict:
    runs = workdir / "popular16"
    cache = workdir / "cache"
    argv = [sys.executable, "-m", "albumgan.experiments.train", "--config", "seed_popular16",
            "--dataset=synthetic", f"--runs_dir={runs}", f"--cache_dir={cache}"]  # fmt: skip
    if quick:
        argv += ["--steps=40", "--g_width=16", "--d_width=16"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    generator_at = None
    while proc.poll() is None or generator_at is None:
        found = list(runs.glob("*/generator.keras"))
        if found and generator_at is None:
            generator_at = time.perf_counter() - started
        if proc.poll() is not None and generator_at is None:
            break
        time.sleep(0.05)
    output = proc.communicate()[0].decode(errors="replace")
    exit_s = time.perf_counter() - started
    run_dirs = sorted(runs.glob("*"))
    status = json.loads((run_dirs[-1] / "status.json").read_text()) if run_dirs else {}
    return {
        "wall_s_to_generator": round(generator_at, 2) if generator_at else None,
        "wall_s_to_exit": round(exit_s, 2),
        "exit_code": proc.returncode,
        "steps": status.get("step"),
        "backend": status.get("backend"),
        "device": status.get("device"),
        "precision": status.get("precision"),
        "train_seconds": status.get("train_seconds"),
        "step_only_img_per_s": status.get("img_per_s"),
        "output_tail": output[-600:],
    }


# ------------------------------------------------------------------------------------------------
# 4. The smoke sweep on 1 and 4 workers
# ------------------------------------------------------------------------------------------------


# Extra sweep runs (``--sweep-variants``): what else could make 4 workers on one GPU faster.
# Setting the thread variables to the machine's core count undoes the runner's thread limits.
ALL_CORES = {name: str(os.cpu_count()) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "MKL_NUM_THREADS")}  # fmt: skip
NO_AUTOTUNE = {"XLA_FLAGS": "--xla_gpu_autotune_level=0"}
SWEEP_VARIANTS = {
    "workers_4_all_cores_threads": (4, ALL_CORES),
    "workers_1_no_autotune": (1, NO_AUTOTUNE),
    "workers_4_no_autotune": (4, NO_AUTOTUNE),
}


def sweep(workdir: Path, quick: bool, variants: bool = False) -> dict:
    runs_to_do = {"workers_1": (1, {}), "workers_4": (4, {})}
    if variants:
        runs_to_do.update(SWEEP_VARIANTS)
    out = {}
    for label, (workers, extra_env) in runs_to_do.items():
        out[label] = sweep_once(workdir / f"sweep-{label}", workdir / "cache", workers, extra_env)
        print(f"[gpu_check] sweep {label}: {out[label]['wall_s']} s", file=sys.stderr)
    out["speedup_4_vs_1"] = round(out["workers_1"]["wall_s"] / out["workers_4"]["wall_s"], 2)
    if variants:
        no_autotune = (
            out["workers_1_no_autotune"]["wall_s"] / out["workers_4_no_autotune"]["wall_s"]
        )
        out["speedup_4_vs_1_no_autotune"] = round(no_autotune, 2)
    return out


def sweep_once(runs: Path, cache: Path, workers: int, extra_env: dict) -> dict:
    argv = [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", "sweeps/smoke.yaml",
            "--runs-dir", str(runs), "--workers", str(workers)]  # fmt: skip
    env = {**os.environ, "ALBUMGAN_CACHE": str(cache), **extra_env}
    started_at = time.time()
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    states = [
        json.loads(p.read_text()).get("state") for p in runs.glob("smoke/trial-*/status.json")
    ]
    return {
        "wall_s": round(wall, 2),
        "env": extra_env,
        "exit_code": proc.returncode,
        "trials_completed": states.count("completed"),
        "trials_per_hour": round(len(states) / wall * 3600, 1),
        "trials": trial_timeline(runs / "smoke" / "optuna.journal", started_at),
        "output_tail": (proc.stdout + proc.stderr)[-400:],
    }


def trial_timeline(journal: Path, sweep_started: float) -> list[dict]:
    """Where each trial's time went, in seconds from the sweep's start: when its worker took it,
    when the trainer's loop began (imports, data, model and first compile before it), when the
    loop ended, and when the worker recorded the result."""
    import optuna

    from albumgan.sweeps.storage import open_storage

    storage = open_storage(str(journal))
    timeline = []
    for trial in optuna.load_study(study_name="smoke", storage=storage).trials:
        status_path = Path(trial.user_attrs.get("run_dir", "")) / "status.json"
        status = json.loads(status_path.read_text()) if status_path.is_file() else {}

        def at(seconds):
            return round(seconds - sweep_started, 2) if seconds else None

        timeline.append({
            "number": trial.number,
            "pid": trial.user_attrs.get("pid"),
            "taken_at": at(trial.datetime_start and trial.datetime_start.timestamp()),
            "loop_started_at": at(status.get("started_at")),
            "loop_ended_at": at(status.get("updated_at")),
            "recorded_at": at(trial.datetime_complete and trial.datetime_complete.timestamp()),
            "train_seconds": status.get("train_seconds"),
            "eval_seconds": status.get("eval_seconds"),
        })  # fmt: skip
    return timeline


# ------------------------------------------------------------------------------------------------
# 5. Packed seeds against one seed alone; 6. the replicated grid packed and not
# ------------------------------------------------------------------------------------------------

PACKED_SEEDS = 16


def _train_process(argv: list[str]) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "albumgan.experiments.train", *argv], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "exit_code": proc.returncode,
        "output_tail": (proc.stdout + proc.stderr)[-400:],
    }


def _losses(run_dir: Path) -> list[list[float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        [r[k] for k in ("d_loss_real", "d_loss_fake", "g_loss")] for r in records if "g_loss" in r
    ]


def packed_seeds(workdir: Path, quick: bool) -> dict:
    seeds = 4 if quick else PACKED_SEEDS
    common = ["--config", "seed_popular16", "--dataset=synthetic", "--backend=jax",
              f"--cache_dir={workdir / 'cache'}"]  # fmt: skip
    if quick:
        common += ["--steps=40", "--g_width=16", "--d_width=16", "--sample_every=20"]
    one_dir, pack_dir = workdir / "packed-one", workdir / "packed-all"
    one = _train_process([*common, "--seed=0", f"--run-dir={one_dir}"])
    listed = ",".join(str(s) for s in range(seeds))
    pack = _train_process([*common, f"--seed=[{listed}]", f"--run-dir={pack_dir}"])
    out = {"seeds": seeds, "one_seed": one, "packed": pack}
    if one["exit_code"] == 0 and pack["exit_code"] == 0:
        ratio = pack["wall_s"] / one["wall_s"]
        out["packed_wall_over_one"] = round(ratio, 3)
        out["runs_per_gpu_second_gain"] = round(seeds / ratio, 2)
        a, b = _losses(pack_dir / "seed-0"), _losses(one_dir)
        diffs = [abs(x - y) / max(abs(y), 1e-6) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
        out["seed0_max_relative_loss_difference"] = max(diffs) if diffs else None
        out["seed0_logged_lines_compared"] = min(len(a), len(b))
        statuses = [json.loads((pack_dir / f"seed-{s}" / "status.json").read_text())
                    for s in range(seeds)]  # fmt: skip
        out["packed_states"] = sorted({st["state"] for st in statuses})
        out["packed_processes"] = len({st["pid"] for st in statuses})
    return out


def replicated_sweep(workdir: Path, quick: bool) -> dict:
    import yaml

    sweep = yaml.safe_load((ROOT / "sweeps" / "seed_grid_replicated.yaml").read_text())
    params = sweep["parameters"]
    params.update(dataset={"value": "synthetic"}, steps={"value": 40 if quick else 1000},
                  backend={"value": "jax"}, eval_every={"value": 20 if quick else 500},
                  sample_every={"value": 20 if quick else 500})  # fmt: skip
    if quick:
        params.update(resolution={"value": 16}, batch_size={"values": [4, 8]})
    path = workdir / "replicated.yaml"
    path.write_text(yaml.safe_dump(sweep))
    out = {}
    for label, flags in (("packed", []), ("unpacked", ["--pack", "1"])):
        runs = workdir / f"replicated-{label}"
        argv = [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", str(path),
                "--runs-dir", str(runs), *flags]  # fmt: skip
        started = time.perf_counter()
        env = {**os.environ, "ALBUMGAN_CACHE": str(workdir / "cache")}
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        statuses = [json.loads(p.read_text()) for p in runs.glob("**/status.json")]
        out[label] = {
            "wall_s": round(time.perf_counter() - started, 2),
            "exit_code": proc.returncode,
            "runs_completed": sum(st.get("state") == "completed" for st in statuses),
            "trainer_processes": len({st.get("pid") for st in statuses}),
            "output_tail": (proc.stdout + proc.stderr)[-400:],
        }
    if out["packed"]["wall_s"]:
        out["speedup_packed"] = round(out["unpacked"]["wall_s"] / out["packed"]["wall_s"], 2)
    return out


# ------------------------------------------------------------------------------------------------
# 7. The harness picks the recipe (``--recipe``, issue #24)
# ------------------------------------------------------------------------------------------------

# The ~8 minutes, sized from the first run on an H200 (2026-12-04, docs/recipe_h200.md): 4
# workers of 3 packed seeds each trained ~1,250 img/s per member (~15k img/s on the GPU), a
# 1,500-step trial took ~125 s from start to result, and modern's 3 packed seeds alone took 103 s
# for 160k images. 4,000-step trials (the sweep file's own) finished none in 230 s.
RECIPE_SWEEP_S = 270
RECIPE_TRIAL_STEPS = 1500  # 48k images per seed: a screening budget, the verdict is longer
RECIPE_WORKERS = 4  # trainer processes sharing the GPU, each one trial's 3 seeds packed
# The verdict: modern and the winner on 3 seeds each, both sides training at once, at 160k images
# (5,000 steps x batch 32; modern's own 10,000 steps did not fit beside the sweep).
RECIPE_IMAGES = 160_000
RECIPE_VERDICT_S = 200
# What the tarball keeps of each run: everything but checkpoints, generators and early grids.
KEEP_SUFFIXES = {".json", ".jsonl", ".yaml", ".md", ".html", ".log", ".journal", ".css", ".js"}


def recipe_sweep_file(workdir: Path, data: str, quick: bool, steps: int | None = None) -> Path:
    """sweeps/recipe_bayes.yaml on ``data``, on JAX (so each trial's seeds pack)."""
    import yaml

    sweep = yaml.safe_load((ROOT / "sweeps" / "recipe_bayes.yaml").read_text())
    params = sweep["parameters"]
    params.update(dataset={"value": data}, backend={"value": "jax"})
    if steps:
        params.update(steps={"value": steps})
    if quick:
        params.update(resolution={"value": 16}, batch_size={"value": 8}, steps={"value": 40},
                      eval_every={"value": 20}, sample_every={"value": 40},
                      checkpoint_every={"value": 20}, g_width={"values": [8, 16]},
                      d_width={"values": [8, 16]})  # fmt: skip
    path = workdir / "recipe_bayes.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _run_bounded(argv: list[str], seconds: float, log: Path, env: dict | None = None) -> dict:
    """Run ``argv`` in its own process group; past ``seconds``, SIGTERM the group, then SIGKILL.
    What it finished stays on disk (a sweep's journal survives a killed parent)."""
    import signal

    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)  # fmt: skip
        cut = False
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            cut = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "exit_code": proc.returncode,
        "cut_at_time_limit": cut,
        "output_tail": log.read_text(errors="replace")[-1500:],
    }


def recipe_winner(journal: Path, study: str) -> dict:
    """The sweep's best complete configuration: its swept values, mean KID and trial number."""
    import optuna

    from albumgan.sweeps.storage import open_storage

    loaded = optuna.load_study(study_name=study, storage=open_storage(str(journal)))
    trials = loaded.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    counts = {state.name.lower(): sum(t.state == state for t in trials)
              for state in optuna.trial.TrialState}  # fmt: skip
    if not complete:
        return {"trials": counts, "winner": None}
    best = min(complete, key=lambda t: t.value)
    return {
        "trials": counts,
        "winner": {"number": best.number, "mean_kid": best.value, "params": best.params},
        "ranking": sorted(
            ({"number": t.number, "mean_kid": t.value, "params": t.params} for t in complete),
            key=lambda row: row["mean_kid"],
        ),
    }


def recipe_verdict(runs: list[dict]) -> dict:
    """The harness's grouped verdict (gan_core.metrics.replicates) on each run's final KID,
    the winner judged against modern (the baseline)."""
    from albumgan.gan_core.metrics.replicates import group_runs, judge

    rows = [{"params": {"side": run["side"], "seed": run["seed"]}, "value": run["final_kid"]}
            for run in runs]  # fmt: skip
    judgement = judge(group_runs(rows), "minimize", rank=False)
    return {
        group.params["side"]: {
            "n": group.n,
            "mean_kid": group.mean,
            "sd": group.sd,
            "interval": group.interval,
            "difference_vs_modern": group.difference,
            "p_welch": group.p_value,
            "verdict": group.verdict,
        }
        for group in judgement.groups
    }


def pack_results(workdir: Path, folders: list[Path], out_dir: Path | None) -> str | None:
    """One tarball of what the report and README need: metrics, configs, statuses, reports and
    the last grid of every run (no checkpoints or generators)."""
    import tarfile

    if out_dir is None:
        return None
    target = out_dir / "recipe_runs.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for folder in folders:
            if not folder.exists():
                continue
            for path in sorted(folder.rglob("*")):
                if not path.is_file() or "checkpoints" in path.parts:
                    continue
                in_report = "report" in path.parts or path.parent.name == "assets"
                last_grid = path.parent.name == "samples" and path == max(
                    path.parent.glob("*.png")
                )
                if path.suffix in KEEP_SUFFIXES or in_report or last_grid:
                    tar.add(path, arcname=str(path.relative_to(workdir)))
    return str(target)


def recipe(
    workdir: Path,
    quick: bool,
    data: str,
    out_dir: Path | None,
    budget: argparse.Namespace,
) -> dict:
    """Sweep the toolbox on ``data`` (bounded), then train modern and the winner on 3 seeds each
    at modern's budget of images, packed, and give the grouped verdict."""
    env = {**os.environ, "ALBUMGAN_CACHE": str(workdir / "cache")}
    sweep_file = recipe_sweep_file(workdir, data, quick, budget.sweep_steps)
    runs = workdir / "recipe"
    argv = [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", str(sweep_file),
            "--runs-dir", str(runs), "--workers", str(2 if quick else RECIPE_WORKERS)]  # fmt: skip
    if quick:
        argv += ["--n-trials", "3"]
    swept = _run_bounded(argv, budget.sweep_seconds, workdir / "sweep.log", env)
    out: dict = {"data": data, "budget": vars(budget), "sweep": swept}
    journal = runs / "recipe_bayes" / "optuna.journal"
    out.update(recipe_winner(journal, "recipe_bayes"))
    report_dir = workdir / "recipe-report"
    out["sweep_report"] = _run_bounded(
        [sys.executable, "-m", "albumgan.experiments.cli", "report", "sweep", "--storage",
         str(journal), "--study", "recipe_bayes", "--out", str(report_dir)],
        120, workdir / "sweep-report.log", env)  # fmt: skip
    folders = [runs, report_dir]
    winner = out.get("winner")
    if winner:
        images = 2_000 if quick else budget.verdict_images
        verdict_dir = workdir / "verdict"
        flags = [f"--against-set={k}={v}" for k, v in sorted(winner["params"].items())]
        common = ["--set=sample_every=5000", "--set=grid_size=8"]
        if quick:
            common = ["--set=sample_every=50", "--set=grid_size=4", "--resolution=16",
                      "--set=batch_size=8", "--set=g_width=8", "--set=d_width=8"]  # fmt: skip
            flags = [f for f in flags if "width" not in f]
        quality_json = workdir / "quality.json"
        argv = [sys.executable, "benchmarks/quality.py", "--config", "modern", "--data", data,
                "--images", str(images), "--evals", "5", "--seeds", "3",
                "--packed", "--concurrent",
                "--backend", "jax", "--workdir", str(verdict_dir), "--markdown",
                "--out", str(quality_json), *common, *flags]  # fmt: skip
        out["quality"] = _run_bounded(argv, budget.verdict_seconds, workdir / "quality.log", env)
        folders.append(verdict_dir)
        if quality_json.is_file():
            result = json.loads(quality_json.read_text())
            finals = []
            for side, name in zip(result["sides"], ("modern", "winner")):
                for run in side["runs"]:
                    kid = run["evals"][-1]["kid"] if run["evals"] else None
                    finals.append({"side": name, "seed": run["seed"], "final_kid": kid,
                                   "run_dir": run["run_dir"]})  # fmt: skip
            out["verdict_runs"] = finals
            out["verdict"] = recipe_verdict(finals)
            out["quality_table"] = result["sides"]
            compare_dir = workdir / "verdict-report"
            out["compare_report"] = _run_bounded(
                [sys.executable, "-m", "albumgan.experiments.cli", "report", "compare",
                 *[run["run_dir"] for run in finals], "--out", str(compare_dir)],
                90, workdir / "compare-report.log", env)  # fmt: skip
            folders.append(compare_dir)
            shutil.copy(quality_json, workdir / "verdict" / "quality.json")
    out["tarball"] = pack_results(workdir, folders, out_dir)
    return out


def targets(report: dict) -> dict:
    def get(*keys):
        value = report
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    measured = {
        "trainer_b16_float32_img_per_s": get("trainer", "b16_float32", "img_per_s"),
        "trainer_b256_bf16_img_per_s": get("trainer", "b256_bf16", "img_per_s"),
        "seed_popular16_wall_s": get("seed_popular16", "wall_s_to_generator"),
        "sweep_speedup_4_vs_1_workers": get("sweep", "speedup_4_vs_1"),
        "packed_runs_per_gpu_second_gain": get("packed_seeds", "runs_per_gpu_second_gain"),
    }
    verdicts = {}
    for key, target in TARGETS.items():
        value = measured[key]
        if value is None and key.split("_")[0] not in {k.split("_")[0] for k in report}:
            continue  # a part this call did not run
        if value is None:
            verdicts[key] = {"target": target, "measured": None, "met": False}
            continue
        met = value <= target if key.endswith("wall_s") else value >= target
        verdicts[key] = {"target": target, "measured": value, "met": met}
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings: a rehearsal")
    parser.add_argument("--out", type=Path, default=None, help="JSON file ($OUT/gpu_check.json)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip")
    parser.add_argument(
        "--sweep-variants", action="store_true", help="also time the sweep's SWEEP_VARIANTS"
    )
    parser.add_argument(
        "--packed",
        action="store_true",
        help="only the packed parts: packed_seeds, replicated_sweep",
    )
    parser.add_argument(
        "--recipe",
        action="store_true",
        help="only the recipe part: sweeps/recipe_bayes.yaml, then modern against its winner",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="--recipe: a prepared folder (default: .covers/ if there, else synthetic)",
    )
    parser.add_argument("--sweep-seconds", type=float, default=RECIPE_SWEEP_S, help="--recipe")
    parser.add_argument(
        "--sweep-steps", type=int, default=RECIPE_TRIAL_STEPS, help="--recipe: steps per trial"
    )
    parser.add_argument("--verdict-images", type=int, default=RECIPE_IMAGES, help="--recipe")
    parser.add_argument("--verdict-seconds", type=float, default=RECIPE_VERDICT_S, help="--recipe")
    args = parser.parse_args()
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / "gpu_check.json"
    report = Report(out)
    skip = set(filter(None, args.skip.split(",")))

    from albumgan.gan_core import backend

    report.put("backend_auto_picks", backend.resolve("auto"))
    backend.activate("jax")
    # A part cut at its time limit may leave a trainer writing as the folder goes.
    with tempfile.TemporaryDirectory(
        prefix="albumgan-gpu-check-", ignore_cleanup_errors=True
    ) as tmp:
        workdir = Path(tmp)
        part(report, "device", device)
        parts = (("trainer", trainer), ("seed_popular16", seed_popular16), ("sweep", sweep))
        if args.packed:
            parts = (("packed_seeds", packed_seeds), ("replicated_sweep", replicated_sweep))
        if args.recipe:
            data = args.data or (
                str(ROOT / ".covers") if (ROOT / ".covers").is_dir() else "synthetic"
            )
            out_dir = out.parent if out else None
            budget = argparse.Namespace(
                sweep_seconds=args.sweep_seconds,
                sweep_steps=args.sweep_steps,
                verdict_images=args.verdict_images,
                verdict_seconds=args.verdict_seconds,
            )
            parts = (("recipe", lambda w, q: recipe(w, q, data, out_dir, budget)),)
        for name, fn in parts:
            if name not in skip:
                extra = (args.sweep_variants,) if name == "sweep" else ()
                part(report, name, fn, workdir, args.quick, *extra)
    report.put("targets", targets(report.data))
    report.put("finished", time.strftime("%Y-%m-%d %H:%M:%S"))
    print(json.dumps(report.data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
