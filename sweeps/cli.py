"""``albumgan sweep validate|run|status``: W&B sweep files, run by Optuna; the leaderboards.

The command's words only: running is ``sweeps.runner``'s, reading a study ``sweeps.results``',
the statistics of seeds ``gan_core.metrics.replicates``'.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import optuna

from albumgan.gan_core.contract import EXIT_FAILED, LOGGED, ArgumentParser, handles_errors, shown
from albumgan.gan_core.metrics.replicates import group_runs, judge
from albumgan.sweeps import results
from albumgan.sweeps.spec import bundled_sweeps, load_spec, resolve_program, resolve_sweep_file
from albumgan.sweeps.trial import is_albumgan_trainer


@handles_errors
def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="albumgan sweep")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("validate", help="check a sweep YAML (W&B schema + our config keys)")
    check.add_argument("file")
    show = sub.add_parser("show", help="print a bundled sweep file (to start your own from)")
    show.add_argument("name", help="a bundled sweep: " + ", ".join(bundled_sweeps()))
    run = sub.add_parser("run", help="run a sweep YAML with Optuna")
    run.add_argument("file")
    run.add_argument("--study", help="study name (default: the sweep's name)")
    run.add_argument("--storage", help="journal file (default), sqlite:/// or postgresql:// URL")
    run.add_argument("--n-trials", type=int, help="global trial cap (also: run_cap)")
    run.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    run.add_argument("--runs-dir", default="runs")
    run.add_argument(
        "--gpus",
        help="GPUs to give the workers, one each, round-robin (e.g. 0,1; default: "
        "CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists)",
    )
    run.add_argument(
        "--wandb",
        action="store_true",
        help="each trial also writes an offline W&B run grouped by study (upload: wandb sync)",
    )
    run.add_argument(
        "--pack",
        type=int,
        help="trials each worker trains at once, those of one shape in one packed JAX trainer "
        "(default: a grid's seeds on JAX, else 1)",
    )
    run.add_argument(
        "--extend",
        action="store_true",
        help="add trials to the study an earlier version of this file made, when this version "
        "only widens its search space (wider min/max ranges, a larger run_cap)",
    )
    run.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    status = sub.add_parser("status", help="leaderboard of a study")
    status.add_argument(
        "--storage", help="default: RUNS/STUDY/optuna.journal, or the only journal under RUNS"
    )
    status.add_argument("--study", help="default: the only study in the storage")
    status.add_argument("--runs-dir", default="runs", help="where sweep run wrote (default runs)")
    args = parser.parse_args(argv)
    if args.command == "show":
        print(resolve_sweep_file(args.name).read_text(encoding="utf-8"), end="")
        return 0
    if args.command == "validate":
        spec = load_spec(args.file)
        seeds = spec.replicate_seeds
        each = f", each on seeds {', '.join(map(str, seeds))}" if seeds else ""
        print(
            f"{args.file}: ok ({spec.method}, metric {spec.metric} {spec.goal}, "
            f"{len(spec.swept)} swept parameters{each})"
        )
        if is_albumgan_trainer(resolve_program(spec.program)):
            print(f"metrics albumgan's trainer logs: {', '.join(LOGGED)}")
        else:
            print(f"metric {spec.metric}: not checked (the program is not albumgan's trainer)")
        return 0
    from albumgan.sweeps import runner

    if args.command == "run" and args.worker_index:
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
            pack=args.pack,
        )
        return 0
    if args.command == "run":
        study = runner.run_sweep(
            args.file,
            args.study,
            args.storage,
            args.n_trials,
            args.workers,
            args.runs_dir,
            args.wandb,
            args.gpus,
            args.pack,
            args.extend,
        )
    else:
        from albumgan.sweeps.storage import find_study, load_study

        study = load_study(*find_study(args.storage, args.study, args.runs_dir))
    print(leaderboard(study))
    print()
    print(grouped_leaderboard(study))
    if args.command != "run":
        return 0
    code = _summary(results.outcome(study))
    _next_steps(study, args.storage, args.runs_dir)
    return _waiting(study) or code


def _waiting(study: optuna.Study) -> int:
    """Trials whose trainer was killed or stopped on a full disk: how many, and the way on
    (exit 1: the sweep has not got all it was asked for)."""
    waiting = results.waits_to_resume(study)
    if not waiting:
        return 0
    why = "; ".join(
        f"trial {t.number}: {str(t.user_attrs.get('state')).split(';')[0]}" for t in waiting
    )
    print(
        f"error: {len(waiting)} trial(s) wait to resume from their checkpoints ({why}); run "
        "the same command again to resume them",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _next_steps(study: optuna.Study, storage: str | None, runs_dir: str) -> None:
    """Where the study is, and the commands that read it (they find a default journal alone)."""
    from albumgan.sweeps.storage import default_location, shown_location

    where = shown_location(storage or default_location(Path(runs_dir), study.study_name))
    print(f"storage: {where} (study {study.study_name})")
    given = f" --storage {shown_location(storage)}" if storage else ""
    given += f" --runs-dir {runs_dir}" if not storage and runs_dir != "runs" else ""
    print(f"next: albumgan report sweep{given} --study {study.study_name}")
    print(f"      albumgan sweep status{given} --study {study.study_name}")


def _summary(counts: dict[str, int]) -> int:
    """One line of counts; exit 1 when not one trial completed (every trial failed or pruned)."""
    line = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    if counts.get("complete"):
        print(f"trials: {line}")
        return 0
    reason = line or "no trials"
    print(f"error: no trial completed ({reason}); see each trial's trial.log", file=sys.stderr)
    return EXIT_FAILED  # the sweep ran, and not one trial completed


def leaderboard(study: optuna.Study) -> str:
    """A plain-text table of trials, ranked (``ranked_trials``)."""
    metric = study.user_attrs.get("metric", "value")
    lines = [f"{'#':>4} {metric:>10} {'state':<9} {'run':<11} params  (run dir)"]
    for trial in results.ranked_trials(study):
        value = trial.value
        text = shown(value) if value is not None and math.isfinite(value) else "-"
        params = results.shown_params(results.trial_params(trial))
        attrs = trial.user_attrs
        lines.append(
            f"{trial.number:>4} {text:>10} {trial.state.name:<9} "
            f"{attrs.get('state', ''):<11} {params}  ({attrs.get('run_dir', '')})"
        )
    return "\n".join(lines)


def grouped_leaderboard(study: optuna.Study) -> str:
    """Configurations (trials that differ only in ``seed``, or a trial's own seeds) ranked by
    their mean, with a 95% t interval and a verdict against the best
    (``gan_core.metrics.replicates``)."""
    judgement = judge(group_runs(results.finished_rows(study)), results.goal(study))
    metric = study.user_attrs.get("metric", "value")
    lines = [
        f"{'rank':>4} {'seeds':>5} {'mean ' + metric:>12} {'95% interval':>21}  verdict  config"
    ]
    for rank, group in enumerate(judgement.groups, start=1):
        interval = group.interval
        span = f"{shown(interval[0])} .. {shown(interval[1])}" if interval else "-"
        mean = shown(group.mean) if group.mean is not None else "-"
        p = f" (p={group.p_value:.2g})" if group.p_value is not None else ""
        config = results.shown_params(group.params)
        lines.append(f"{rank:>4} {group.n:>5} {mean:>12} {span:>21}  {group.verdict}{p}  {config}")
    if not judgement.replicated:
        lines.append(
            "every configuration ran with one seed: its differences cannot be told from "
            "seed noise (add seed: {values: [0, 1, 2]})"
        )
    elif judgement.closest and judgement.seeds_needed:
        lines.append(
            f"closest call: about {judgement.seeds_needed} seeds per configuration would "
            "tell it apart at the observed spread (80% power, alpha 0.05)"
        )
    return "\n".join(lines)
