"""``albumgan report run|sweep|compare``: write HTML + Markdown reports and print where."""

from __future__ import annotations

from albumgan.gan_core.contract import ArgumentParser, handles_errors


@handles_errors
def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="albumgan report")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="report of one run directory (RUN_DIR/report/)")
    run.add_argument("run_dir")
    run.add_argument("--out", help="folder for index.html + report.md (default RUN_DIR/report)")
    sweep = sub.add_parser("sweep", help="report of an Optuna study (a sweep)")
    sweep.add_argument(
        "--storage",
        help="journal file, sqlite:/// or postgresql:// (default: RUNS/STUDY/optuna.journal, "
        "or the only journal under RUNS)",
    )
    sweep.add_argument("--study", help="default: the only study in the storage")
    sweep.add_argument("--runs-dir", default="runs", help="where sweep run wrote (default runs)")
    sweep.add_argument("--out", help="default: <the trials' runs folder>/report")
    sweep.add_argument(
        "--no-run-reports", action="store_true", help="do not write missing per-trial run reports"
    )
    compare = sub.add_parser("compare", help="runs side by side, config differences highlighted")
    compare.add_argument("run_dirs", nargs="+")
    compare.add_argument("--out", help="default: <runs folder>/compare-<run ids>")
    args = parser.parse_args(argv)

    if args.command == "run":
        from albumgan.reports.run_report import run_report

        index = run_report(args.run_dir, args.out)
    elif args.command == "sweep":
        from albumgan.reports.sweep_report import sweep_report
        from albumgan.sweeps.storage import find_study

        storage, study = find_study(args.storage, args.study, args.runs_dir)
        index = sweep_report(storage, study, args.out, not args.no_run_reports)
    else:
        from albumgan.reports.compare_report import compare_report

        index = compare_report(args.run_dirs, args.out)
    print(f"report: {index}")
    print(f"        {index.with_name('report.md')}")
    return 0
