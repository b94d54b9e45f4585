"""``albumgan report compare RUN_DIR... [--out DIR]``: chosen runs side by side.

The run report's panels for each run in columns, one overlaid chart of every run's curves, and
one config table with the keys whose values differ highlighted (bookkeeping keys such as
``name`` and ``runs_dir`` are left out of the differences).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from albumgan.gan_core.contract import GOALS, PRIMARY_SCORE, REPLICATE_KEY
from albumgan.gan_core.metrics.replicates import group_runs, judge
from albumgan.reports import charts
from albumgan.reports.render import report_folder, write_report
from albumgan.reports.run_report import run_panels
from albumgan.reports.rundata import ReportError, load_run

# Keys that differ between any two runs without changing what was trained.
BOOKKEEPING = {"name", "runs_dir", "cache_dir", "data_dir"}


def differing_keys(configs: list[dict]) -> list[str]:
    keys = sorted({k for c in configs for k in c} - BOOKKEEPING)
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def compare_folder_name(paths: list[Path]) -> str:
    """``compare-00003-00007``, ``compare-trial-0002-trial-0005``, ``compare-trial-0001.seed-0-
    trial-0001.seed-1``: named by the runs compared; long or ambiguous lists end in a hash of the
    runs' paths, so two comparisons never share a folder."""
    ids = []
    for path in paths:
        name = path.name
        numbered = re.match(r"(\d+)-", name)
        if numbered:
            name = numbered.group(1)  # "00004-smoke": its number is unique in its folder
        elif re.fullmatch(r"seed-\d+", name):
            name = f"{path.parent.name}.{name}"  # a packed run's member
        ids.append(name)
    digest = hashlib.sha1("\n".join(str(p.resolve()) for p in paths).encode()).hexdigest()[:8]
    if len(set(ids)) < len(ids):
        return f"compare-{'-'.join(dict.fromkeys(ids))}-{digest}"
    joined = "-".join(ids)
    if len(joined) > 80:
        return f"compare-{ids[0]}-and-{len(ids) - 1}-more-{digest}"
    return f"compare-{joined}"


def compare_report(
    run_dirs: list[str | Path], out: str | Path | None = None, metric: str = PRIMARY_SCORE
) -> Path:
    """Write the comparison of ``run_dirs`` (at least two); returns its index.html. Runs that
    differ only in seed are judged on their final ``metric`` (its own goal, ``GOALS``)."""
    if len(run_dirs) < 2:
        raise ReportError(f"compare needs at least two run directories, got {len(run_dirs)}")
    runs = [load_run(path) for path in run_dirs]
    if out is None:
        out = runs[0].path.parent / compare_folder_name([run.path for run in runs])
    out = report_folder(out)
    assets = out / "assets"
    panels = [run_panels(run, assets, prefix=f"run{i}_") for i, run in enumerate(runs)]
    charts.metric_curves([(run.name, run.metrics) for run in runs], assets / "curves_all.png")
    configs = [run.config for run in runs]
    differing = differing_keys(configs)
    keys = list(dict.fromkeys(k for c in configs for k in c))
    # Runs that differ only in seed are one configuration, judged against the first run's.
    group_params = [k for k in differing if k != REPLICATE_KEY]
    rows = [
        {
            "params": {k: run.config.get(k) for k in [*group_params, REPLICATE_KEY]},
            "value": (run.final_eval or {}).get(metric),
        }
        for run in runs
    ]
    context = {
        "title": "Compare " + ", ".join(run.name for run in runs),
        "panels": panels,
        "curves_all": f"{assets.name}/curves_all.png",
        "keys": keys,
        "differing": differing,
        "judgement": judge(group_runs(rows), GOALS[metric], rank=False),
        "group_params": group_params,
        "metric": f"final {metric}",
    }
    return write_report(out, "compare", context)
