"""``albumgan sweep validate|run|status``: W&B sweep files, run by Optuna."""

from __future__ import annotations

import argparse
import sys

from albumgan.gan_core.contract import EXIT_FAILED, EXIT_USAGE
from albumgan.sweeps.spec import SweepError, load_spec


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="albumgan sweep")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("validate", help="check a sweep YAML (W&B schema + our config keys)")
    check.add_argument("file")
    run = sub.add_parser("run", help="run a sweep YAML with Optuna")
    run.add_argument("file")
    run.add_argument("--study", help="study name (default: the sweep's name)")
    run.add_argument("--storage", help="journal file (default), sqlite:/// or postgresql:// URL")
    run.add_argument("--n-trials", type=int, help="global trial cap (also: run_cap)")
    run.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    run.add_argument("--runs-dir", default="runs")
    run.add_argument(
        "--wandb",
        action="store_true",
        help="each trial also writes an offline W&B run grouped by study (upload: wandb sync)",
    )
    run.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    status = sub.add_parser("status", help="leaderboard of a study")
    status.add_argument("--storage", required=True)
    status.add_argument("--study", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            spec = load_spec(args.file)
            seeds = spec.replicate_seeds
            each = f", each on seeds {', '.join(map(str, seeds))}" if seeds else ""
            print(
                f"{args.file}: ok ({spec.method}, metric {spec.metric} {spec.goal}, "
                f"{len(spec.swept)} swept parameters{each})"
            )
            return 0
        from albumgan.sweeps import runner

        if args.command == "run":
            if args.worker_index:
                from albumgan.sweeps.children import die_with_parent

                die_with_parent()  # a worker started by `sweep run` ends with it
                runner.run_worker(
                    args.file,
                    args.study,
                    args.storage,
                    args.n_trials,
                    args.runs_dir,
                    args.worker_index,
                    args.wandb,
                )
                return 0
            study = runner.run_sweep(
                args.file,
                args.study,
                args.storage,
                args.n_trials,
                args.workers,
                args.runs_dir,
                args.wandb,
            )
            print(runner.leaderboard(study))
            print()
            print(runner.grouped_leaderboard(study))
            return _summary(runner.outcome(study))
        else:
            from albumgan.sweeps.storage import load_study

            study = load_study(args.storage, args.study)
        print(runner.leaderboard(study))
        print()
        print(runner.grouped_leaderboard(study))
        return 0
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _summary(counts: dict[str, int]) -> int:
    """One line of counts; exit 1 when not one trial completed (every trial failed or pruned)."""
    line = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    if counts.get("complete"):
        print(f"trials: {line}")
        return 0
    reason = line or "no trials"
    print(f"error: no trial completed ({reason}); see each trial's trial.log", file=sys.stderr)
    return EXIT_FAILED  # the sweep ran, and not one trial completed
