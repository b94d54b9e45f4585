"""Names and numbers other programs rely on: metric names, extractor names, run and trial
states, exit codes, and the one error type users see.

One home for each, so that the trainer, the sweep runner, the W&B logger, the reports and every
command agree. Imports nothing (no framework, no project module): anything may import it.
"""

from __future__ import annotations

# --- metrics ------------------------------------------------------------------------------------
# What an evaluation scores, under the names metrics.jsonl, best.json, the sweep's `metric.name`,
# Optuna's trial attributes and W&B use. People see the same raw values (``shown``).
SCORES = ("kid", "kid_std", "fid", "precision", "recall")
EXTRA_SCORES = ("density", "coverage")  # `albumgan evaluate` only (k-NN, slower)
LOSSES = ("d_loss_real", "d_loss_fake", "g_loss")  # what every engine's train step returns


def shown(value: float) -> str:
    """A score as every command, log line and report prints it: the raw value, the one in the
    files, to 4 significant digits. KID is not scaled (no KID x 10^3) anywhere."""
    return f"{value:.4g}"


# Runs that differ only in this config key are replicates of one configuration: sweeps run a
# random/bayes configuration on every listed seed, reports group such runs.
REPLICATE_KEY = "seed"

# --- feature extractors -------------------------------------------------------------------------
EXTRACTORS = ("album", "inception")  # album: offline, ours; inception: Keras InceptionV3 weights

# --- exit codes ---------------------------------------------------------------------------------
EXIT_OK = 0
EXIT_FAILED = 1  # ran, but did not get what was asked: no sweep trial completed, a download failed
EXIT_USAGE = 2  # bad arguments, config, backend, run directory, checkpoint or dataset: one line
EXIT_DIVERGED = 3  # a training run whose losses became NaN/Inf (marked; a sweep goes on)
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
