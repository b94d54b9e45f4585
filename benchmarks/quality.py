"""Sample quality: train a config to N images seen, and print each evaluation's scores.

    python benchmarks/quality.py --config smoke --images 2000                  # ~1 minute, CPU
    python benchmarks/quality.py --config seed_popular16 --data /path/prepared --resolution 32 \\
        --images 20000 --against modern --seeds 3 --markdown --out quality.json
    python benchmarks/quality.py --config modern --against-set d_norm=spectral --images 50000

Each config (``--config``: a preset name from experiments/configs or a YAML path, plus ``--set
key=value`` overrides, given to both sides) trains through the installed CLI, one process per run
(``python -m albumgan.experiments.cli train``, so a CPU and a GPU machine run the same command),
into ``--workdir`` (default: a temporary folder, removed at the end), on ``--data`` (a folder
made by ``albumgan data prepare``, a registry name, or the embedded ``synthetic`` covers, the
default). Each run sees ``--images`` images: steps = ceil(images / batch_size), with
``eval_every`` chosen for about ``--evals`` evaluations (the trainer also scores the last step).
Sample grids and periodic checkpoints are off unless ``--set`` turns them on.

``--against PRESET`` (and/or ``--against-set key=value``, the second side's own overrides)
trains a second config the same way: same images seen, data, seeds and backend, the runs of the
two sides interleaved. With equal batch sizes that is the same steps and the same evaluation
steps; otherwise the rows pair the i-th evaluation of each side (the images seen are listed).
``--seeds K`` trains seeds ``--seed`` .. ``--seed``+K-1 of each side and prints mean ± std (over
seeds, ddof 1) at each evaluation; with ``--packed`` each side's seeds train as one packed run
(``--seed=[0,1,2]``: one program on JAX, so K seeds cost about one run on a GPU), its members in
``<workdir>/<a|b>-<label>/seed-S``, ready for ``albumgan report compare``'s grouped verdict
(``--concurrent``: both sides' packed runs at once, sharing the GPU).

Prints, per evaluation: step, images seen, KID, FID, precision and recall as the run's
metrics.jsonl holds them (KID raw, not x10^3, as everywhere in albumgan; the extractor and the
sample counts are named above the table), then img/s (status.json's ``img_per_s``: compiled
training executions only) and wall seconds per run, and the machine (the CPU model, or the GPU
that JAX computes on). ``--markdown`` also prints the table as Markdown for the README, ``--out
FILE`` writes everything as JSON. Exit code 2 on a bad argument or a run that fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from albumgan.gan_core.contract import UsageError, handles_errors, shown  # noqa: E402
from albumgan.gan_core.fileio import write_json  # noqa: E402

SCORES = ("kid", "fid", "precision", "recall")
HEADINGS = {"kid": "KID", "fid": "FID", "precision": "precision", "recall": "recall"}
# Keys the benchmark sets itself, from its own options: a --set of one of them would be ignored.
OWN_KEYS = {
    "dataset": "--data",
    "steps": "--images",
    "eval_every": "--evals",
    "seed": "--seed/--seeds",
    "backend": "--backend",
    "runs_dir": "--workdir",
}
# Exit codes of `albumgan train` whose run directory still holds metrics worth reading.
EXIT_OK, EXIT_DIVERGED = 0, 3


# ------------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (lscpu's, else platform's) and the cores this process may use."""
    name = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        name = found.group(1).strip() if found else ""
    except (OSError, subprocess.SubprocessError):
        pass
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} ({cores} cores)"


def machine_name(device: str | None) -> str:
    """What the runs computed on: the GPU's name (status.json's ``device``), else the CPU."""
    if device and device.lower() not in ("cpu", "unknown"):
        return str(device)
    return cpu_model()


# ------------------------------------------------------------------------------------------------
# Configs and runs
# ------------------------------------------------------------------------------------------------


def set_flags(pairs: list[str], option: str = "--set") -> list[str]:
    """``["lr_d=1e-4", ...]`` -> ``["--lr_d=1e-4", ...]``, refusing the keys the benchmark sets.

    Raises:
        UsageError: not KEY=VALUE, or a key the benchmark sets itself.
    """
    flags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {pair!r}")
        if key in OWN_KEYS:
            raise UsageError(f"{option} {pair}: the benchmark sets {key} (use {OWN_KEYS[key]})")
        flags.append(f"--{key}={value}")
    return flags


def resolve_config(argv: list[str]):
    """The TrainConfig ``albumgan train argv`` would train (parsed as the CLI parses it).

    Raises:
        ConfigError: unknown preset, key or value (exit 2, the CLI's own message).
    """
    from albumgan.experiments.train import parse_args

    return parse_args(argv)[0]


@dataclass
class Side:
    """One config of the comparison: a preset or YAML plus its overrides."""

    label: str
    config: str
    flags: list[str]
    batch_size: int = 0
    steps: int = 0
    eval_every: int = 0
    runs: list[dict] = field(default_factory=list)

    def argv(
        self, data: str, seed: int | list[int], backend: str, defaults: list[str] = ()
    ) -> list[str]:
        """The ``albumgan train`` arguments of one run (a list of seeds: one packed run). The last
        flag of a key wins: the benchmark's defaults come before the overrides, its own keys
        last."""
        seed_text = str(seed) if isinstance(seed, int) else "[" + ",".join(map(str, seed)) + "]"
        own = [
            f"--dataset={data}",
            f"--steps={self.steps}",
            f"--eval_every={self.eval_every}",
            f"--seed={seed_text}",
            f"--backend={backend}",
        ]
        return ["--config", self.config, *defaults, *self.flags, *own]


def make_side(label: str, config: str, flags: list[str], images: int, evals: int) -> Side:
    """A side with its steps and eval_every for ``images`` images seen in ~``evals`` scores."""
    side = Side(label, config, flags, steps=1)  # steps and eval_every are set from its batch
    cfg = resolve_config(side.argv("synthetic", 0, "auto"))
    side.batch_size = cfg.batch_size
    side.steps = max(1, math.ceil(images / cfg.batch_size))
    side.eval_every = max(1, math.ceil(side.steps / max(1, evals)))
    return side


@dataclass
class Training:
    """A trainer process under way: ``start_run``'s, read back by ``finish_run``."""

    proc: subprocess.Popen
    run_dir: Path
    log: Path
    members: list[Path]
    started: float


def start_run(argv: list[str], run_dir: Path, log: Path, members: list[Path] = ()) -> Training:
    """Start ``albumgan train argv`` in its own process, its output in ``log``."""
    command = [sys.executable, "-m", "albumgan.experiments.cli", "train", *argv,
               f"--run-dir={run_dir}"]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Training(proc, run_dir, log, list(members), time.perf_counter())


def finish_run(training: Training) -> list[dict]:
    """Wait for the trainer; return its status, evaluations and wall seconds (one dict per
    member of a packed run: ``members``, its seeds' directories).

    Raises:
        UsageError: the trainer failed (exit code other than 0 or 3), with its last output.
    """
    code = training.proc.wait()
    wall = time.perf_counter() - training.started
    if code not in (EXIT_OK, EXIT_DIVERGED):
        tail = " | ".join(training.log.read_text(errors="replace").strip().splitlines()[-3:])
        name, log = training.run_dir.name, training.log
        raise UsageError(f"training {name} exited {code} (log {log}): {tail}")
    results = []
    for member in training.members or [training.run_dir]:
        status = json.loads((member / "status.json").read_text())
        lines = (member / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        results.append({
            "run_dir": str(member),
            "exit_code": code,
            "state": status.get("state"),
            "wall_s": round(wall, 2),
            "status": status,
            "evals": [r for r in records if "kid" in r],
        })  # fmt: skip
    return results


def train_run(argv: list[str], run_dir: Path, log: Path, members: list[Path] = ()) -> list[dict]:
    """Train one run in its own process and wait for it (``finish_run``'s result)."""
    return finish_run(start_run(argv, run_dir, log, members))


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", label)[:80]


def _collect(side: Side, argv: list[str], training: Training, seeds: list[int]) -> None:
    runs = finish_run(training)
    for seed, run in zip(seeds, runs):
        run.update(seed=seed, argv=argv)
        side.runs.append(run)
    print(
        f"[quality]   {side.label}: {runs[0]['state']} in {runs[0]['wall_s']:.0f} s, "
        f"{runs[0]['status'].get('img_per_s')} img/s per member",
        file=sys.stderr,
    )


def run_sides(
    sides: list[Side],
    data: str,
    seeds: list[int],
    backend: str,
    workdir: Path,
    defaults: list[str],
    packed: bool = False,
    concurrent: bool = False,
) -> None:
    """Train every (seed, side), the sides interleaved so that drift hits both alike; with
    ``packed``, each side's seeds as one packed run (one program on JAX, gan_core.packing),
    and with ``concurrent`` too, the sides' runs at the same time (sharing a GPU)."""
    if packed and len(seeds) > 1:
        started = []
        for i, side in enumerate(sides):
            run_dir = workdir / f"{'ab'[i]}-{_safe(side.label)}"
            if run_dir.exists():
                shutil.rmtree(run_dir)  # fresh runs, never resumed ones
            print(
                f"[quality] {side.label} seeds {seeds}, packed: {side.steps} steps x batch "
                f"{side.batch_size}, evaluating every {side.eval_every}",
                file=sys.stderr,
            )
            argv = side.argv(data, seeds, backend, defaults)
            members = [run_dir / f"seed-{seed}" for seed in seeds]
            training = start_run(argv, run_dir, workdir / "logs" / f"{run_dir.name}.log", members)
            started.append((side, argv, training))
            if not concurrent:
                _collect(*started.pop(), seeds)
        for side, argv, training in started:
            _collect(side, argv, training, seeds)
        return
    for seed in seeds:
        for i, side in enumerate(sides):
            run_dir = workdir / f"{'ab'[i]}-{_safe(side.label)}" / f"seed-{seed}"
            if run_dir.exists():
                shutil.rmtree(run_dir)  # a fresh run, never a resumed one
            print(
                f"[quality] {side.label} seed {seed}: {side.steps} steps x batch "
                f"{side.batch_size}, evaluating every {side.eval_every}",
                file=sys.stderr,
            )
            argv = side.argv(data, seed, backend, defaults)
            log = workdir / "logs" / f"{run_dir.parent.name}-{seed}.log"
            (run,) = train_run(argv, run_dir, log)
            run.update(seed=seed, argv=argv)
            side.runs.append(run)
            print(
                f"[quality]   {run['state']} in {run['wall_s']:.0f} s, "
                f"{run['status'].get('img_per_s')} img/s",
                file=sys.stderr,
            )


# ------------------------------------------------------------------------------------------------
# Summaries and tables
# ------------------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and (ddof 1) standard deviation; std is None for one value, both None for none."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def summarise(side: Side) -> list[dict]:
    """Per evaluation index: step, images seen, and mean/std over seeds of each score."""
    rows = []
    count = max((len(run["evals"]) for run in side.runs), default=0)
    for i in range(count):
        evals = [run["evals"][i] for run in side.runs if i < len(run["evals"])]
        row = {
            "step": evals[0]["step"],
            "images": evals[0]["step"] * side.batch_size,
            "seeds": len(evals),
        }
        for score in SCORES:
            row[score], row[f"{score}_std"] = mean_std([e.get(score) for e in evals])
        rows.append(row)
    return rows


def cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return shown(mean) if std is None else f"{shown(mean)} ± {shown(std)}"


def table_rows(sides: list[Side], summaries: list[list[dict]]) -> tuple[list[str], list[list]]:
    """Column names and rows: images and step per side, then each score side by side."""
    letters = "AB" if len(sides) > 1 else ("",)
    same_images = len({tuple(r["images"] for r in s) for s in summaries}) == 1
    columns = ["eval"]
    if same_images:
        columns += ["images"] + [f"step {x}".strip() for x in letters]
    else:
        columns += [f"{c} {x}".strip() for x in letters for c in ("images", "step")]
    columns += [f"{HEADINGS[score]} {x}".strip() for score in SCORES for x in letters]
    rows = []
    for i in range(max(len(s) for s in summaries)):
        got = [s[i] if i < len(s) else None for s in summaries]
        row: list = [i + 1]
        if same_images:
            row += [got[0]["images"]] + [g["step"] if g else "-" for g in got]
        else:
            for g in got:
                row += [g["images"], g["step"]] if g else ["-", "-"]
        for score in SCORES:
            row += [cell(g[score], g[f"{score}_std"]) if g else "-" for g in got]
        rows.append(row)
    return columns, rows


def print_table(columns: list[str], rows: list[list]) -> None:
    text = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(columns))]
    for r in text:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def markdown(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput(side: Side) -> dict:
    img_per_s = mean_std([run["status"].get("img_per_s") for run in side.runs])
    wall = mean_std([run["wall_s"] for run in side.runs])
    return {
        "img_per_s": img_per_s[0],
        "img_per_s_std": img_per_s[1],
        "wall_s": wall[0],
        "wall_s_std": wall[1],
    }


def describe(side: Side, letter: str) -> str:
    name = f"{letter} = {side.label}" if letter else side.label
    return (
        f"{name}: {side.steps} steps x batch {side.batch_size}, evaluated every "
        f"{side.eval_every} steps"
    )


# ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="preset name or YAML path")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for both sides (repeatable)",
    )
    parser.add_argument(
        "--against", default=None, metavar="PRESET", help="a second config, trained the same way"
    )
    parser.add_argument(
        "--against-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for the second side only (its config: --against, else --config)",
    )
    parser.add_argument(
        "--data",
        default="synthetic",
        help="dataset: a prepared folder, a registry name, or synthetic",
    )
    parser.add_argument("--resolution", type=int, default=None, help="px (default: config's)")
    parser.add_argument(
        "--images", type=int, required=True, metavar="N", help="images seen per run"
    )
    parser.add_argument("--evals", type=int, default=5, help="about this many evaluations")
    parser.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds per side")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--backend", default="auto", help="auto | tensorflow | jax")
    parser.add_argument("--workdir", type=Path, default=None, help="runs go here (kept)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--packed",
        action="store_true",
        help="train each side's seeds as one packed run (one JAX program; a GPU's fast path)",
    )
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="with --packed: train the sides' packed runs at the same time (one GPU shared)",
    )
    args = parser.parse_args(argv)
    for name in ("images", "evals", "seeds"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


@handles_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common = set_flags(args.set)
    if args.resolution:
        common.append(f"--resolution={args.resolution}")
    sides = [make_side(Path(args.config).stem, args.config, common, args.images, args.evals)]
    if args.against or args.against_set:
        config = args.against or args.config
        label = Path(config).stem + "".join(f" {s}" for s in args.against_set)
        if label == sides[0].label:
            raise UsageError("--against names the same config as --config, with no --against-set")
        flags = common + set_flags(args.against_set, "--against-set")
        sides.append(make_side(label, config, flags, args.images, args.evals))
    seeds = list(range(args.seed, args.seed + args.seeds))
    with tempfile.TemporaryDirectory(prefix="albumgan-quality-") as tmp:
        workdir = args.workdir or Path(tmp)
        # The real images' features are computed once for all runs, cached in the workdir.
        defaults = ["--sample_every=0", "--checkpoint_every=0", f"--cache_dir={workdir / 'cache'}"]
        run_sides(
            sides, args.data, seeds, args.backend, workdir, defaults, args.packed, args.concurrent
        )
        return report(args, sides, seeds, workdir)


def report(args: argparse.Namespace, sides: list[Side], seeds: list[int], workdir: Path) -> int:
    summaries = [summarise(side) for side in sides]
    first = sides[0].runs[0]
    status = first["status"]
    evals = first["evals"]
    if not evals:
        raise UsageError(f"{first['run_dir']} logged no evaluation (state {first['state']})")
    record = evals[0]
    machine = machine_name(status.get("device"))
    letters = "AB" if len(sides) > 1 else ("",)
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    print(
        f"quality: {args.images} images seen per run on {args.data} ({status.get('n_images')} "
        f"images) at {record['resolution']} px, {seed_text}"
    )
    for side, letter in zip(sides, letters):
        print("  " + describe(side, letter))
    print(
        f"machine: {machine}; {status.get('backend')} on {status.get('device')}, "
        f"{status.get('precision')}"
    )
    print(
        f"scores: {record['extractor']} extractor ({record['extractor_version']}), "
        f"{record['n_real']} real vs {record['n_fake']} generated images per evaluation; "
        f"KID raw (not x10^3)" + ("; mean ± std over seeds" if len(seeds) > 1 else "")
    )
    columns, rows = table_rows(sides, summaries)
    print()
    print_table(columns, rows)
    print()
    speeds = [throughput(side) for side in sides]
    for side, letter, speed in zip(sides, letters, speeds):
        name = letter or side.label
        states = sorted({run["state"] for run in side.runs})
        print(
            f"{name}: {cell(speed['img_per_s'], speed['img_per_s_std'])} img/s (compiled "
            f"training steps), {cell(speed['wall_s'], speed['wall_s_std'])} s per run "
            f"(process start to exit, evaluations included); {', '.join(states)}"
        )
    if args.markdown:
        print()
        legend = "; ".join(f"{x} = {s.label}" for s, x in zip(sides, letters) if x)
        print(
            f"{args.images} images seen, {record['resolution']} px, {seed_text}, {machine}, "
            f"{status.get('backend')}" + (f"; {legend}" if legend else "") + ":"
        )
        print()
        print(markdown(columns, rows))
    if args.out:
        result = {
            "machine": machine,
            "backend": status.get("backend"),
            "device": status.get("device"),
            "precision": status.get("precision"),
            "data": args.data,
            "n_images": status.get("n_images"),
            "resolution": record["resolution"],
            "extractor": record["extractor_version"],
            "images": args.images,
            "seeds": seeds,
            "workdir": str(workdir) if args.workdir else None,
            "sides": [
                {
                    "label": side.label,
                    "batch_size": side.batch_size,
                    "steps": side.steps,
                    "eval_every": side.eval_every,
                    "throughput": speed,
                    "evaluations": summary,
                    "runs": [
                        {k: v for k, v in run.items() if k != "status"}
                        | {"img_per_s": run["status"].get("img_per_s")}
                        for run in side.runs
                    ],
                }
                for side, speed, summary in zip(sides, speeds, summaries)
            ],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
