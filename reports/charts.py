"""Static PNG charts (matplotlib, Agg): the same files serve the HTML and the Markdown report.

PNG rather than an interactive library: a report must open anywhere, offline, with nothing
fetched at view time, and stay small enough to attach to a message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from albumgan.gan_core.fileio import atomic_write  # noqa: E402

DPI = 110
# Curves drawn per panel: (title, [(metrics.jsonl key, label)]).
PANELS = (
    ("KID (lower is better)", [("kid", "KID")]),
    ("FID (lower is better)", [("fid", "FID")]),
    ("precision / recall", [("precision", "precision"), ("recall", "recall")]),
    ("losses", [("d_loss_real", "D real"), ("d_loss_fake", "D fake"), ("g_loss", "G")]),
)
# A fifth panel for runs with adaptive augmentation (augment_p: ada).
ADA_PANEL = ("augmentation probability p (ADA)", [("augment_p", "p")])


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    points = [(r["step"], r[key]) for r in records if _finite(r.get(key)) and "step" in r]
    if not points:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*points)
    return np.asarray(steps), np.asarray(values, dtype=float)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _save(fig, path: Path) -> None:
    with atomic_write(path, durable=False) as handle:  # a report re-made under a reader
        fig.savefig(handle, format=path.suffix.lstrip(".") or "png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def metric_curves(runs: Sequence[tuple[str, list[dict]]], path: Path) -> None:
    """KID (with its std band), FID, precision/recall and losses over steps, one line per run
    (losses: one run only, or G loss per run when comparing), and ADA's p where runs have it."""
    panels = PANELS
    if any(_finite(r.get("augment_p")) for _, records in runs for r in records):
        panels = (*PANELS, ADA_PANEL)
    rows = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(10, 3.25 * rows))
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    many = len(runs) > 1
    for ax, (title, keys) in zip(axes.flat, panels):
        if many and title == "losses":
            keys, title = [("g_loss", "G")], "generator loss"
        drawn = False
        for label, records in runs:
            for key, name in keys:
                steps, values = _series(records, key)
                if len(steps) == 0:
                    continue
                line_label = (
                    f"{label}: {name}" if many and len(keys) > 1 else (label if many else name)
                )
                marker = "o" if len(steps) < 30 else None
                (line,) = ax.plot(steps, values, marker=marker, markersize=3, label=line_label)
                drawn = True
                if key == "kid":
                    _, std = _series(records, "kid_std")
                    if len(std) == len(values):
                        ax.fill_between(
                            steps, values - std, values + std, color=line.get_color(), alpha=0.15
                        )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.grid(alpha=0.3)
        if drawn:
            if many or len(keys) > 1:
                ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    _save(fig, path)


def param_effect(
    name: str, values: list, kids: list[float], path: Path, log: bool, metric: str = "kid"
) -> None:
    """The sweep's metric (``kids``: its values) against one swept parameter: every run (each
    seed) as a point; for choices a strip per value with the mean and its 95% t interval, for
    ranges a scatter."""
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    numeric = all(_finite(v) for v in values)
    if numeric and len(set(values)) > 6:
        ax.scatter(values, kids, s=18, alpha=0.8)
        if log:
            ax.set_xscale("log")
    else:
        labels = sorted({str(v) for v in values}, key=_natural)
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(values))
        xs = [labels.index(str(v)) + j for v, j in zip(values, jitter)]
        ax.scatter(xs, kids, s=18, alpha=0.8)
        for i, label in enumerate(labels):
            group = [k for v, k in zip(values, kids) if str(v) == label]
            mean = float(np.mean(group))
            ax.hlines(mean, i - 0.3, i + 0.3, color="black", linewidth=1.5)
            if len(group) > 1:  # the 95% t interval of the mean of the runs at this value
                half = stats.t.ppf(0.975, len(group) - 1) * np.std(group, ddof=1)
                half /= np.sqrt(len(group))
                ax.errorbar(i, mean, yerr=half, color="black", capsize=4, linewidth=1)
        ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 3 else 0)
    ax.set_xlabel(name)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.set_title(f"{metric} vs {name}", fontsize=10)
    _save(fig, path)


def _natural(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def history(
    numbers: list[int], kids: list[float], path: Path, maximize: bool = False, metric: str = "kid"
) -> None:
    """Each trial's value of the sweep's metric in trial order, with the best so far."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.scatter(numbers, kids, s=18, label="trial")
    order = np.argsort(numbers)
    best = (np.maximum if maximize else np.minimum).accumulate(np.asarray(kids)[order])
    ax.step(np.asarray(numbers)[order], best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("optimization history", fontsize=10)
    _save(fig, path)


def parallel_coordinates(
    params: list[str],
    rows: list[dict],
    kids: list[float],
    path: Path,
    metric: str = "kid",
    maximize: bool = False,
) -> None:
    """One line per trial across the swept parameters (each axis scaled to [0, 1]; choices
    spaced evenly), coloured by the sweep's metric (darker = better)."""
    axes_values = []
    ticks = []
    for name in params:
        column = [row.get(name) for row in rows]
        if all(_finite(v) for v in column) and len(set(column)) > 1:
            low, high = min(column), max(column)
            axes_values.append([(v - low) / (high - low) for v in column])
            ticks.append([(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")])
        else:
            labels = sorted({str(v) for v in column}, key=_natural)
            span = max(len(labels) - 1, 1)
            axes_values.append([labels.index(str(v)) / span for v in column])
            ticks.append([(i / span, label) for i, label in enumerate(labels)])
    axes_values.append(_unit(kids))
    ticks.append([(0.0, f"{min(kids):.3g}"), (1.0, f"{max(kids):.3g}")])
    names = [*params, metric]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(names)), 3.6))
    badness = [-k for k in kids] if maximize else kids
    colours = plt.cm.viridis(_unit(badness))
    for t in np.argsort(badness)[::-1]:  # best drawn last, on top
        ax.plot(range(len(names)), [col[t] for col in axes_values], color=colours[t], alpha=0.8)
    for i, axis_ticks in enumerate(ticks):
        ax.axvline(i, color="grey", linewidth=0.8)
        for y, label in axis_ticks:
            ax.text(i + 0.03, y, label, fontsize=7, va="center")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    better = "higher" if maximize else "lower"
    ax.set_title(f"parallel coordinates (darker = {better} {metric})", fontsize=10)
    _save(fig, path)


def _unit(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.5 for v in values]


def importance(scores: dict[str, float], path: Path, metric: str = "kid") -> None:
    """Optuna's parameter importances as horizontal bars."""
    names = list(scores)[::-1]
    fig, ax = plt.subplots(figsize=(5, 0.45 * len(names) + 1.0))
    ax.barh(names, [scores[n] for n in names], color="C0")
    ax.set_xlabel(f"importance for {metric} (fANOVA)")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3, axis="x")
    _save(fig, path)
