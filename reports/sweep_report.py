"""``albumgan report sweep --storage X --study NAME [--out DIR]``: one Optuna study as a report.

A sortable leaderboard (swept values, KID, FID, steps, time, state, link to each trial's run
report), parameter importance (Optuna's default evaluator), KID against each swept parameter,
the optimization history, parallel coordinates, the best and worst trials' samples side by side,
and the pruned/failed trials with their reasons. Reads the study and the trials' run
directories; writes a run report for each trial that has none (``--no-run-reports`` skips it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from albumgan.gan_core.contract import PRIMARY_SCORE, REPLICATE_KEY
from albumgan.gan_core.metrics.replicates import Group, group_runs, judge
from albumgan.reports import charts, gallery
from albumgan.reports.render import relative, report_folder, write_report
from albumgan.reports.run_report import run_report
from albumgan.reports.rundata import RunData, headline, load_run
from albumgan.sweeps.results import ranked_trials, trial_params
from albumgan.sweeps.storage import load_study, shown_location


def trial_rows(study: optuna.Study, metric: str) -> list[dict]:
    """One row per trial (grid trials that ran nothing left out), best first."""
    rows = []
    for trial in ranked_trials(study):
        attrs = trial.user_attrs
        run = None
        if attrs.get("run_dir") and (Path(attrs["run_dir"]) / "config.yaml").is_file():
            run = load_run(attrs["run_dir"])
        value = trial.value if trial.state == TrialState.COMPLETE else None
        if value is not None and not math.isfinite(value):
            value = None
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "run_state": attrs.get("state", ""),
                "params": trial_params(trial),
                "replicates": attrs.get("replicates"),  # one per seed: a replicated trial
                "value": value,
                "fid": attrs.get("fid"),
                "step": _step(run),
                "seconds": _seconds(trial, run),
                "run": run,
                "reason": _reason(trial, run, metric),
                "trial": trial,
            }
        )
    return rows


def _step(run: RunData | None) -> int | None:
    """The trial's step: its run's, or for a replicated trial (one ``seed-S`` folder per seed,
    the trial folder itself holding no status) the step its slowest seed reached."""
    if run is None:
        return None
    if run.status or run.metrics:
        return run.step
    members = [load_run(path) for path in sorted(run.path.glob("seed-*"))
               if (path / "config.yaml").is_file()]  # fmt: skip
    return min((member.step for member in members), default=None)


def _seconds(trial, run: RunData | None) -> float | None:
    if run and run.status.get("wall_seconds"):
        return run.status["wall_seconds"]
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def _reason(trial, run: RunData | None, metric: str) -> str:
    """Why a trial did not complete, in words."""
    attrs = trial.user_attrs
    if trial.state == TrialState.PRUNED:
        if trial.intermediate_values:
            step = max(trial.intermediate_values)
            value = trial.intermediate_values[step]
            return f"stopped early at step {step} ({metric} {value:.4g})"
        return "pruned"
    if trial.state == TrialState.FAIL:
        parts = [str(attrs.get("state") or "failed")]
        if attrs.get("exit_code") is not None:
            parts.append(f"exit code {attrs['exit_code']}")
        if run and run.status.get("message"):
            parts.append(run.status["message"])
        if run and (run.path / "trial.log").is_file():
            parts.append(f"log: {run.path / 'trial.log'}")
        return "; ".join(parts)
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        if not math.isfinite(trial.value):
            return f"{attrs.get('state', 'diverged')}: no finite {metric}"
    return ""


def sweep_report(
    storage: str,
    study_name: str,
    out: str | Path | None = None,
    run_reports: bool = True,
) -> Path:
    """Write the sweep report; returns its index.html."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" lines
    study = load_study(storage, study_name)
    metric = study.user_attrs.get("metric", PRIMARY_SCORE)
    rows = trial_rows(study, metric)
    runs = [r["run"] for r in rows if r["run"]]
    if out is None:
        parents = {run.path.parent for run in runs}
        base = parents.pop() if len(parents) == 1 else Path("runs") / study_name
        out = base / "report"
    out = report_folder(out)
    assets = out / "assets"
    params = sorted({name for r in rows for name in r["params"]})
    for row in rows:
        row["link"] = None
        if row["run"] and run_reports:
            index = row["run"].path / "report" / "index.html"
            if not index.is_file():
                run_report(row["run"].path)
            row["link"] = relative(index, out)
    scored = [r for r in rows if r["value"] is not None]
    judgement = judge(group_runs(scored), study.direction.name.lower())
    context = {
        "title": f"Sweep {study_name}",
        "study": study_name,
        "storage": shown_location(storage),  # a database password stays out of the report
        "metric": metric,
        "direction": study.direction.name.lower(),
        "method": study.user_attrs.get("method", ""),
        "params": params,
        "rows": rows,
        "counts": _counts(rows),
        "judgement": judgement,
        "group_params": [p for p in params if p != REPLICATE_KEY],
        "charts": _charts(study, params, scored, judgement.groups, assets),
        "sides": _best_and_worst(scored, assets),
        "problems": [r for r in rows if r["state"] in ("pruned", "fail") or r["reason"]],
    }
    return write_report(out, "sweep", context)


def _counts(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def _seed_points(groups: list[Group]) -> list[dict]:
    """One point per seed that gave a value: its config's params (and seed) and the value."""
    return [
        {"params": {**g.params, REPLICATE_KEY: seed}, "value": value}
        for g in groups
        for seed, value in zip(g.seeds, g.values)
    ]


def _charts(
    study: optuna.Study, params: list[str], rows: list[dict], groups: list[Group], assets: Path
) -> dict:
    """Importance (on group means), per-parameter effect (every seed's point), history and
    parallel coordinates (with notes on what could not be drawn and why)."""
    result: dict[str, Any] = {"effects": [], "notes": []}
    points = _seed_points([g for g in groups if g.values])
    if len(points) < 2:
        result["notes"].append(f"{len(points)} scored trial(s): charts need at least 2")
        return result
    kids = [r["value"] for r in points]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    metric = study.user_attrs.get("metric", PRIMARY_SCORE)
    numbers, values = [r["number"] for r in rows], [r["value"] for r in rows]
    charts.history(numbers, values, assets / "history.png", maximize, metric)
    result["history"] = f"{assets.name}/history.png"
    params = [p for p in params if p != REPLICATE_KEY]  # seed noise is not an effect
    swept = [p for p in params if len({str(r["params"].get(p)) for r in points}) > 1]
    for name in params:
        if name not in swept:
            result["notes"].append(
                f"{name}: one value among the scored trials, nothing to compare"
            )
    for name in swept:
        path = assets / f"effect_{name}.png"
        values = [r["params"].get(name) for r in points]
        log = _is_log(study, name)
        charts.param_effect(name, values, kids, path, log, metric)
        result["effects"].append({"param": name, "src": f"{assets.name}/{path.name}"})
    if swept:
        charts.parallel_coordinates(
            swept, [r["params"] for r in points], kids, assets / "parallel.png", metric, maximize
        )
        result["parallel"] = f"{assets.name}/parallel.png"
    if len(swept) < 2:  # importances share 1 among the swept: one parameter always gets 1.0
        result["notes"].append(
            f"parameter importance not shown: {len(swept)} swept parameter(s) among the scored "
            "trials, and importances only rank two or more against each other (see the "
            "configurations table for whether its values differ beyond seed noise)"
        )
        return result
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        scores = optuna.importance.get_param_importances(
            _group_means_study(study, groups), evaluator=evaluator
        )
        # A parameter drawn by its quantile ("lr.u", sweeps.sampling) is named by its value.
        scores = {k.removesuffix(".u"): v for k, v in scores.items()}
        scores = {k: v for k, v in scores.items() if k in swept}
        if scores:
            charts.importance(scores, assets / "importance.png", metric)
            result["importance"] = f"{assets.name}/importance.png"
            result["importance_scores"] = scores
    except (ValueError, RuntimeError) as exc:
        result["notes"].append(f"parameter importance not computed: {exc}")
    return result


def _group_means_study(study: optuna.Study, groups: list[Group]) -> optuna.Study:
    """An in-memory study with one trial per config, its value the mean over seeds: importance
    is computed on configs, not on seed noise."""
    means = optuna.create_study(direction=study.direction)
    for group in groups:
        if not group.values:
            continue
        source = group.rows[0]["trial"]
        names = [n for n in source.distributions if n != REPLICATE_KEY]
        means.add_trial(
            optuna.trial.create_trial(
                params={n: source.params[n] for n in names},
                distributions={n: source.distributions[n] for n in names},
                value=group.mean,
            )
        )
    return means


def _is_log(study: optuna.Study, name: str) -> bool:
    for trial in study.get_trials(deepcopy=False):
        dist = trial.distributions.get(name)
        if dist is not None:
            return bool(getattr(dist, "log", False))
    return False


def _best_and_worst(scored: list[dict], assets: Path) -> list[dict]:
    """Samples of the best and the worst scored trial, side by side."""
    picks = []
    if scored:
        picks.append(("best", scored[0]))
    if len(scored) > 1:
        picks.append(("worst", scored[-1]))
    sides = []
    for label, row in picks:
        run = row["run"]
        if not run:
            continue
        path, caption = gallery.best_samples_source(run)
        sides.append(
            {
                "label": label,
                "number": row["number"],
                "value": row["value"],
                "params": row["params"],
                "caption": caption,
                "headline": headline(run),
                "src": gallery.copy_asset(path, assets, f"{label}_samples.png") if path else None,
            }
        )
    return sides
