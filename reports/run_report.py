"""``albumgan report run RUN_DIR``: one run as ``RUN_DIR/report/index.html`` + ``report.md``.

Config, headline numbers (final and best KID with extractor and sample counts, steps, wall time,
img/s), metric curves, a timeline of sample grids and a progress GIF, the best samples at full
resolution beside real images, their nearest real neighbours (memorization check), the dataset's
source mix, and the run's state. Reads the run directory only; re-running refreshes the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from albumgan.reports import charts, gallery
from albumgan.reports.datasummary import summarize_dataset
from albumgan.reports.render import report_folder, write_report
from albumgan.reports.rundata import RunData, headline, load_run

STATE_NOTES = {
    "completed": "",
    "running": "This run is still in progress: the report shows it as of now; re-run "
    "`albumgan report run` for newer results.",
    "stalled": "status.json says running, but its process is gone (killed hard?): resume it "
    "with `albumgan train --run-dir {path}`.",
    "interrupted": "This run was interrupted (SIGINT/SIGTERM) and checkpointed; resume it with "
    "`albumgan train --run-dir {path}`.",
    "diverged": "This run diverged (a non-finite loss) and was stopped.",
    "failed": "This run stopped on an error ({message}); once that is fixed, resume it with "
    "`albumgan train --run-dir {path}`.",
    "no space": "This run stopped on a full disk ({message}); free space and resume it with "
    "`albumgan train --run-dir {path}`.",
    "not started": "No status.json yet: the run has not started training.",
}


def run_panels(run: RunData, assets: Path, prefix: str = "", neighbours: bool = True) -> dict:
    """Everything one run contributes to a report; pictures go to ``assets/<prefix>*``."""
    charts.metric_curves([(run.name, run.metrics)], assets / f"{prefix}curves.png")
    timeline = [
        {"step": step, "src": gallery.copy_asset(path, assets, f"{prefix}grid_{step:06d}.png")}
        for step, path in gallery.pick_evenly(run.grids, gallery.TIMELINE_GRIDS)
    ]
    gif_path = assets / f"{prefix}progress.gif"
    gif = f"{assets.name}/{gif_path.name}" if gallery.progress_gif(run, gif_path) else None
    best_path, best_caption = gallery.best_samples_source(run)
    best = None
    if best_path:
        best = {
            "src": gallery.copy_asset(best_path, assets, f"{prefix}best_samples.png"),
            "caption": best_caption,
        }
    reals = run.file("reals.png")
    near: Any = "nearest neighbours skipped: no samples"
    if best_path and neighbours:
        near = gallery.nearest_neighbours(run, best_path, assets, prefix)
    return {
        "run": run,
        "name": run.name,
        "state": run.state,
        "state_note": STATE_NOTES[run.state].format(
            path=run.path, message=run.status.get("message", "")
        )
        if run.state in STATE_NOTES
        else f"unknown state {run.state!r}",
        "headline": headline(run),
        "config": run.config,
        "evals": run.evals,
        "curves": f"{assets.name}/{prefix}curves.png",
        "timeline": timeline,
        "gif": gif,
        "best": best,
        "reals": gallery.copy_asset(reals, assets, f"{prefix}reals.png") if reals else None,
        "neighbours": near if isinstance(near, gallery.Neighbours) else None,
        "neighbours_note": near if isinstance(near, str) else "",
        "dataset": summarize_dataset(run.config),
        "resolution": int(run.config.get("resolution", 64)),
    }


def run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report/``); returns index.html."""
    run = load_run(run_dir)
    out = report_folder(out or run.path / "report")
    panels = run_panels(run, out / "assets")
    return write_report(out, "run", {"title": f"Run {run.name}", "p": panels})
