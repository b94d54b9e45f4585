"""``albumgan sweep validate|run|status``: W&B sweep files, run by Optuna."""

from __future__ import annotations

import argparse
import sys

from sweeps.spec import SweepError, load_spec

EXIT_USAGE = 2


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
            print(
                f"{args.file}: ok ({spec.method}, metric {spec.metric} {spec.goal}, "
                f"{len(spec.swept)} swept parameters)"
            )
            return 0
        from sweeps import runner

        if args.command == "run":
            if args.worker_index:
                study = runner.run_worker(
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
        else:
            import optuna

            study = optuna.load_study(
                study_name=args.study,
                storage=runner.open_storage(args.storage, args.study, None),
            )
        print(runner.leaderboard(study))
        return 0
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
