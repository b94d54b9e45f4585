"""Input pipeline order/resume, and checkpoint atomicity and fallback."""

from __future__ import annotations

import numpy as np
import pytest

from albumgan.gan_core import checkpoint
from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.steps.tensorflow import TensorFlowEngine, make_batches


def _images(n: int) -> np.ndarray:
    # Image i is filled with the value i, so a batch tells which images it holds.
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 4, 4, 3)).copy()


def _ids(batch) -> list[int]:
    return [int(round((v + 1.0) * 127.5)) for v in batch.numpy()[:, 0, 0, 0]]


def test_every_epoch_is_a_permutation_and_values_are_in_range():
    batches = iter(make_batches(_images(10), batch_size=5, seed=0))
    first = [next(batches) for _ in range(4)]  # two epochs
    assert all(-1.0 <= float(b.numpy().min()) and float(b.numpy().max()) <= 1.0 for b in first)
    epoch1 = _ids(first[0]) + _ids(first[1])
    epoch2 = _ids(first[2]) + _ids(first[3])
    assert sorted(epoch1) == sorted(epoch2) == list(range(10))
    assert epoch1 != epoch2  # reshuffled each epoch


def test_starting_at_step_k_continues_the_same_stream():
    images = _images(7)  # batches straddle epoch boundaries
    full = [_ids(b) for b, _ in zip(make_batches(images, 3, seed=5), range(9))]
    resumed = [_ids(b) for b, _ in zip(make_batches(images, 3, seed=5, start_step=4), range(5))]
    assert resumed == full[4:]
    other_seed = [_ids(b) for b, _ in zip(make_batches(images, 3, seed=6), range(9))]
    assert other_seed != full


@pytest.fixture
def engine():
    cfg = TrainConfig(resolution=16, g_width=4, d_width=4, noise_shape=(8,), ema=0.9)
    return TensorFlowEngine(cfg, "float32")


def test_save_restore_roundtrip_and_pruning(engine, tmp_path):
    directory = tmp_path / "ckpt"
    for step in (1, 2, 3):
        checkpoint.save(engine, directory, step, keep=2)
    assert [s for s, _ in checkpoint.list_checkpoints(directory)] == [2, 3]
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    saved = [v.numpy().copy() for v in engine.generator.variables]
    state = engine.gan.rng.state.numpy().copy()
    for v in engine.generator.variables:
        v.assign(np.zeros(v.shape, v.dtype))
    engine.gan.rng.normal([3])
    assert checkpoint.restore_latest(engine, directory) == 3
    for before, v in zip(saved, engine.generator.variables):
        np.testing.assert_array_equal(before, v.numpy())
    np.testing.assert_array_equal(state, engine.gan.rng.state.numpy())


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(engine, tmp_path):
    directory = tmp_path / "ckpt"
    checkpoint.save(engine, directory, 5, keep=3)
    newest = checkpoint.save(engine, directory, 10, keep=3)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # torn write
    (directory / ".ckpt-000015.npz.abc.tmp").write_bytes(b"partial")  # a killed save
    assert checkpoint.restore_latest(engine, directory) == 5


def test_a_checkpoint_of_another_model_is_refused(engine, tmp_path):
    checkpoint.save(engine, tmp_path, 1, keep=1)
    other = TensorFlowEngine(
        TrainConfig(resolution=16, g_width=8, d_width=4, noise_shape=(8,), ema=0.9), "float32"
    )
    with pytest.raises(checkpoint.CheckpointError, match="shape"):
        checkpoint.restore_latest(other, tmp_path)


def test_no_checkpoint_means_step_zero(engine, tmp_path):
    assert checkpoint.restore_latest(engine, tmp_path / "none") == 0
