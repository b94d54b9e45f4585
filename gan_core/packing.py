"""Packed runs: several runs of one shape trained together, each in its own run directory.

    albumgan train --config seed_popular16 --seed=[0,1,2,3]      # a packed run of 4 replicas
    train(TrainConfig(seed=(0, 1, 2, 3)), data)                  # the same from Python
    train_pack([(cfg_a, dir_a), (cfg_b, dir_b)], data)           # siblings (a sweep's trials)

On JAX the members are one process and one compiled program (``steps/packed.py``): a leading
member axis on the state, ``jax.vmap`` over the step. On TensorFlow (the CPU path) they train
one after another; the run directories are the same either way.

A list of seeds writes::

    RUN_DIR/config.yaml       the config with the list of seeds
    RUN_DIR/replicas.json     the members: [{"seed": S, "run_dir": "seed-S"}, ...]
    RUN_DIR/seed-S/           exactly what a single run with --seed=S writes

Members pack when they differ only in ``MEMBER_KEYS`` (seed, learning rates, Adam's betas, label
noise, the EMA decay and ramp-up, R1's gamma, ADA's target and speed) and the per-run bookkeeping
keys (``RUN_KEYS``); everything else (batch size, resolution, widths, steps, the intervals,
precision, augmentation, loss, D's normalisation, the schedule, EMA and R1 on or off) is the
pack's shape: one compiled program, and the same step boundaries for every member.

A resumed pack restores every member from its newest checkpoint; members whose newest
checkpoints are at different steps (``kill -9`` between two members' saves) are brought back to
the newest step they all have, or, without one, train as separate packs one after another.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from albumgan.gan_core import backend, checkpoint
from albumgan.gan_core.config import ConfigError, TrainConfig
from albumgan.gan_core.fileio import write_json
from albumgan.gan_core.run import TrainingData, due
from albumgan.gan_core.rundir import (
    REPLICAS_FILE,
    RunLock,
    check_resumable,
    make_dirs,
    read_config,
    write_config,
)

MEMBER_KEYS = ("seed", "lr_g", "lr_d", "beta1", "beta2", "label_noise", "ema", "ema_rampup",
               "r1_gamma", "ada_target", "ada_speed")  # fmt: skip
# Of those, the ones the step reads as numbers: all but the seed (its keys are inputs anyway).
# The learning rates are optimizer variables too; a schedule rewrites them from these.
TRACED_KEYS = MEMBER_KEYS[1:]
# Per-run bookkeeping: where a member writes and what it keeps; not part of the program.
RUN_KEYS = ("name", "runs_dir", "cache_dir", "data_dir", "best_metric", "best_goal",
            "keep_checkpoints", "inception_weights")  # fmt: skip


def pack_shape(cfg: TrainConfig) -> dict:
    """What members of one pack must share: every key but ``MEMBER_KEYS`` and ``RUN_KEYS``, and
    whether there is an EMA generator (its decay may differ)."""
    shape = {k: v for k, v in cfg.to_dict().items() if k not in MEMBER_KEYS + RUN_KEYS}
    shape["ema_on"] = cfg.ema > 0
    shape["r1_on"] = cfg.r1  # R1's gradient of a gradient is part of the program, its gamma not
    return shape


def shape_difference(a: TrainConfig, b: TrainConfig) -> list[str]:
    """The keys that keep ``a`` and ``b`` out of one pack (empty: they pack)."""
    sa, sb = pack_shape(a), pack_shape(b)
    return [key for key in sa if sa[key] != sb[key]]


def member_dir(parent: Path, seed: int) -> Path:
    return parent / f"seed-{seed}"


def train_replicas(
    cfg: TrainConfig,
    data: TrainingData,
    callbacks=(),
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
):
    """Train ``cfg.seeds`` as one packed run (``gan_core.training.train`` calls this for a list
    of seeds). Returns a ``TrainResult`` for ``RUN_DIR`` whose ``members`` are the seeds' own;
    its state and exit code are the worst member's (interrupted, then diverged)."""
    from albumgan.gan_core.precision import check_precision
    from albumgan.gan_core.training import TrainResult, _check_data, _run_dir_for

    _check_data(cfg, data)
    check_precision(cfg.precision, backend.resolve(cfg.backend))
    parent = _run_dir_for(cfg, run_dir, resume)
    with RunLock(parent):
        write_config(parent, cfg)
        members = [(cfg.replace(seed=seed), member_dir(parent, seed)) for seed in cfg.seeds]
        listed = [{"seed": seed, "run_dir": member_dir(parent, seed).name} for seed in cfg.seeds]
        write_json(parent / REPLICAS_FILE, {"seeds": list(cfg.seeds), "members": listed})
        results = train_pack(members, data, callbacks)
    worst = max(results, key=lambda r: r.exit_code)
    return TrainResult(
        parent, worst.state, min(r.step for r in results), {}, worst.exit_code, worst.backend,
        members=results,
    )  # fmt: skip


def train_pack(
    members: Sequence[tuple[TrainConfig, str | os.PathLike]],
    data: TrainingData,
    callbacks=(),
) -> list:
    """Train each (config, run directory) of ``members``, packed on JAX; one ``TrainResult``
    per member, in order. An existing run directory is resumed, as ``train`` does.

    Args:
        callbacks: extra callbacks for every member: a function ``(cfg, run_dir) -> callbacks``,
            or a list, of which each member gets its own shallow copy.

    Raises:
        ConfigError: the members differ in a key that is part of the pack's shape, a run
            directory holds another config, or the data do not fit.
    """
    from albumgan.gan_core.precision import check_precision, resolve_precision
    from albumgan.gan_core.training import _check_data, _failed, _train_in, callbacks_for

    members = [(cfg, Path(path)) for cfg, path in members]
    first = members[0][0]
    for cfg, path in members[1:]:
        differing = shape_difference(first, cfg)
        if differing:
            raise ConfigError(
                f"pack: {path} differs from {members[0][1]} in {', '.join(differing)}; only "
                f"{', '.join(MEMBER_KEYS)} may differ between the members of a pack"
            )
    _check_data(first, data)
    backend_name = backend.resolve(first.backend)
    check_precision(first.precision, backend_name)
    for cfg, path in members:
        if (path / "config.yaml").is_file():
            check_resumable(read_config(path), cfg, path)
        make_dirs(path)
    with ExitStack() as locks:
        for _, path in members:
            locks.enter_context(RunLock(path))
        backend.activate(backend_name)
        policy = resolve_precision(first.precision, backend_name)
        extra = [callbacks_for(callbacks, cfg, path, copies=True) for cfg, path in members]
        try:
            if backend_name != "jax":  # TensorFlow: one after another, the same run dirs
                return [
                    _train_in(path, cfg, data, cbs, policy, backend_name)
                    for (cfg, path), cbs in zip(members, extra)
                ]
            return _train_packed(members, data, extra, policy)
        except OSError as exc:
            failures = [_failed(path, exc) for _, path in members]
            raise failures[0] from exc


def _train_packed(members, data: TrainingData, extra, policy: str) -> list:
    """The members on JAX: restored, aligned on a common step, trained as packs."""
    from albumgan.gan_core.steps import make_engine
    from albumgan.gan_core.steps.packed import PackedJaxEngine
    from albumgan.gan_core.training import TrainResult, open_member, run_members

    engines, starts = [], []
    for cfg, path in members:
        engine = make_engine(cfg, policy, data.images)
        engines.append(engine)
        starts.append(checkpoint.restore_latest(engine, path / "checkpoints"))
    common = min(starts)
    for i, (_, path) in enumerate(members):
        older = checkpoint.checkpoint_path(path / "checkpoints", common)
        if starts[i] > common > 0 and older.is_file():
            starts[i] = checkpoint.restore_file(engines[i], older)
    results: list[TrainResult | None] = [None] * len(members)
    for step in sorted(set(starts)):
        chosen = [i for i, s in enumerate(starts) if s == step]
        pack = PackedJaxEngine([engines[i] for i in chosen], step)
        opened = []
        for j, i in enumerate(chosen):
            cfg, path = members[i]
            member = open_member(
                path, cfg, data, engines[i], step, extra[i], policy, "jax", index=j
            )
            if isinstance(member, TrainResult):  # completed before: nothing to train
                results[i] = member
                pack.freeze(j)
            else:
                opened.append((i, member))
        if opened:
            run_members(
                [m for _, m in opened],
                pack.run,
                before_callbacks=lambda active, at, pack=pack: _prefetch(pack, active, at),
                stop_member=lambda member, pack=pack: pack.freeze(member.index),
            )
        for i, member in opened:
            results[i] = member.result
    return results


def _prefetch(pack, members, step: int) -> None:
    """Draw every member's sample grid and evaluation images due at ``step`` in one vmapped
    forward pass, before the callbacks ask for them one by one."""
    requests = []
    for member in members:
        run = member.run
        if due(step, run.cfg.sample_every, run):
            requests.append((member.index, run.grid_z))
        evaluator = member.evaluator
        if evaluator.active and due(step, run.cfg.eval_every, run):
            requests.append((member.index, evaluator.eval_z))
    if requests:
        pack.prefetch(requests)
