"""The TensorFlow engine's compiled step: what changes when, the fused optimizer, DiffAugment
(eager and in tf.data), precision. The JAX engine is held to the same step by test_backends.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from albumgan.gan_core.augment import OPS, diff_augment, uniforms_needed
from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.steps.tensorflow import DCGAN, TensorFlowEngine
from albumgan.gan_core.steps.tf_optimizer import FusedAdam


def build_gan(cfg: TrainConfig, policy: str) -> DCGAN:
    return TensorFlowEngine(cfg, policy).gan


def _augment(images, ops, rng: tf.random.Generator):
    """DiffAugment with its draws from a TensorFlow generator, as the engine draws them."""
    return diff_augment(images, ops, rng.uniform([images.shape[0], uniforms_needed(ops)]))


def _snapshot(model: keras.Model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.variables]


def _changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


_ENGINES: dict[int, TensorFlowEngine] = {}


def _engine_of(gan: DCGAN) -> TensorFlowEngine:
    return _ENGINES[id(gan)]


@pytest.fixture
def gan() -> DCGAN:
    cfg = TrainConfig(
        resolution=16,
        g_width=8,
        d_width=8,
        noise_shape=(1, 1, 16),
        batch_size=4,
        precision="float32",
        ema=0.9,
        diffaugment="True",
    )
    engine = TensorFlowEngine(cfg, "float32")
    _ENGINES[id(engine.gan)] = engine
    return engine.gan


def test_one_step_changes_g_and_d_and_g_update_leaves_d_untouched(gan, monkeypatch):
    g0, d0 = _snapshot(gan.generator), _snapshot(gan.discriminator)
    after_d_updates = {}
    original = DCGAN._d_update
    calls = []

    def spy(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # real, then fake: D's state as the G update starts
            after_d_updates["d"] = _snapshot(self.discriminator)
        return loss

    monkeypatch.setattr(DCGAN, "_d_update", spy)
    real = tf.random.uniform((4, 16, 16, 3), -1, 1)
    logs = gan.train_step(real)  # eager: the spy sees the order of updates
    assert len(calls) == 2
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert _changed(g0, _snapshot(gan.generator)), "G did not change"
    assert _changed(d0, after_d_updates["d"]), "D did not change"
    # Nothing of D (weights or BatchNorm statistics) moved during the G update.
    for before, after in zip(after_d_updates["d"], _snapshot(gan.discriminator)):
        np.testing.assert_array_equal(before, after)
    assert int(gan.d_optimizer.iterations.numpy()) == 2  # two D updates, as the seed
    assert int(gan.g_optimizer.iterations.numpy()) == 1


def test_step_n_runs_n_steps_and_ema_follows(gan):
    ds = tf.data.Dataset.from_tensors(tf.zeros((4, 16, 16, 3))).repeat()
    ema0 = _snapshot(gan.ema_generator)
    out = gan.step_n(iter(ds), 3)
    assert int(out["steps"]) == 3 and bool(out["finite"])
    assert int(gan.g_optimizer.iterations.numpy()) == 3
    assert _changed(ema0, _snapshot(gan.ema_generator))
    # EMA weights lie between their start and G's current weights.
    w_ema = gan.ema_generator.get_layer("up1").kernel.numpy()
    w_g = gan.generator.get_layer("up1").kernel.numpy()
    assert not np.array_equal(w_ema, w_g)


def test_step_n_stops_at_the_first_non_finite_loss():
    cfg = TrainConfig(resolution=16, g_width=8, d_width=8, noise_shape=(1, 1, 16), batch_size=4)
    gan = build_gan(cfg, "float32")
    nan_batches = tf.data.Dataset.from_tensors(tf.fill((4, 16, 16, 3), np.nan)).repeat()
    out = gan.step_n(iter(nan_batches), 5)
    assert not bool(out["finite"]) and int(out["steps"]) == 1


def test_fused_adam_matches_keras_adam():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 5)).astype(np.float32)
    a, b = keras.Variable(start), keras.Variable(start)
    ref, ours = keras.optimizers.Adam(1e-2, beta_1=0.5), FusedAdam(1e-2, beta_1=0.5)

    @tf.function
    def step(grad):
        ref.apply_gradients([(grad, a)])
        ours.apply_gradients([(grad, b)])

    for _ in range(25):
        step(tf.constant(rng.normal(size=(6, 5)).astype(np.float32)))
    assert np.abs(a.numpy() - start).max() > 0.05  # it did move
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6)
    assert int(ours.iterations.numpy()) == 25


@pytest.mark.parametrize("op", sorted(OPS))
def test_diffaugment_op_eager_and_in_tf_data(op):
    images = tf.random.stateless_uniform((4, 16, 16, 3), seed=(1, 2), minval=-1, maxval=1)
    eager = _augment(images, (op,), tf.random.Generator.from_seed(7)).numpy()
    rng = tf.random.Generator.from_seed(7)
    ds = tf.data.Dataset.from_tensors(images).map(lambda x: _augment(x, (op,), rng))
    in_data = next(iter(ds)).numpy()
    assert eager.shape == images.shape
    assert not np.allclose(eager, images.numpy())  # it changed the images
    np.testing.assert_allclose(eager, in_data, atol=1e-6)  # same RNG, same result either way


def test_cutout_and_translation_keep_pixels_or_zero():
    images = tf.ones((8, 16, 16, 3))
    rng = tf.random.Generator.from_seed(3)
    for op in ("cutout", "translation"):
        out = _augment(images, (op,), rng).numpy()
        assert set(np.unique(out)) <= {0.0, 1.0}
        assert 0 < (out == 0).mean() < 0.75


def test_diffaugment_is_differentiable():
    x = tf.Variable(tf.random.uniform((2, 16, 16, 3), -1, 1))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(
            _augment(x, ("color", "translation", "cutout"), tf.random.Generator.from_seed(0))
        )
    grad = tape.gradient(y, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_ema_sampler_statistics_are_re_estimated_repeatably(gan):
    ds = tf.data.Dataset.from_tensors(tf.zeros((4, 16, 16, 3))).repeat()
    gan.step_n(iter(ds), 2)
    rng_state = gan.rng.state.numpy().copy()
    engine = _engine_of(gan)
    generator = engine.sampling_generator()
    assert generator is gan.ema_generator
    ema_stats = [v.numpy().copy() for v in generator.non_trainable_variables]
    g_stats = [v.numpy() for v in gan.generator.non_trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(ema_stats, g_stats))  # its own statistics
    noise = np.random.default_rng(0).standard_normal((3, 1, 1, 16)).astype(np.float32)
    first = np.asarray(generator(noise, training=False))
    second = np.asarray(engine.sampling_generator()(noise, training=False))
    np.testing.assert_array_equal(first, second)  # re-estimation is deterministic
    np.testing.assert_array_equal(rng_state, gan.rng.state.numpy())  # training RNG untouched


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_policies_train(policy):
    cfg = TrainConfig(resolution=16, g_width=8, d_width=8, noise_shape=(1, 1, 16), batch_size=4)
    gan = build_gan(cfg, policy)
    if policy == "mixed_float16":  # fp16 needs loss scaling; bf16 does not
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    g0 = _snapshot(gan.generator)
    ds = tf.data.Dataset.from_tensors(tf.random.uniform((4, 16, 16, 3), -1, 1)).repeat()
    out = gan.step_n(iter(ds), 2)
    assert bool(out["finite"]) and int(out["steps"]) == 2
    assert _changed(g0, _snapshot(gan.generator))


def test_auto_precision_follows_the_hardware(monkeypatch):
    from albumgan.gan_core import precision

    monkeypatch.setattr(precision, "gpu_capability", lambda backend: None)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.resolve_precision("auto", "tensorflow") == "mixed_bfloat16"
    assert precision.resolve_precision("auto", "jax") == "float32"  # XLA's CPU convs: no gain
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.resolve_precision("auto", "tensorflow") == "float32"
    explicit = precision.resolve_precision("mixed_float16", "tensorflow")
    assert explicit == "mixed_float16"  # explicit wins
    with pytest.raises(precision.PrecisionError, match="mixed_float16 needs loss scaling"):
        precision.resolve_precision("mixed_float16", "jax")
    monkeypatch.setattr(precision, "gpu_capability", lambda backend: (9, 0))  # H100/H200
    assert precision.resolve_precision("auto", "jax") == "mixed_bfloat16"
    assert precision.resolve_precision("auto", "tensorflow") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "gpu_capability", lambda backend: (7, 0))  # V100: no bf16
    assert precision.resolve_precision("auto", "jax") == "float32"
    assert precision.resolve_precision("auto", "tensorflow") == "mixed_float16"


def test_keras_fit_runs_the_same_train_step(gan):
    ds = tf.data.Dataset.from_tensors(tf.random.uniform((4, 16, 16, 3), -1, 1)).repeat()
    history = gan.fit(ds, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    assert set(history.history) >= {"d_loss_real", "d_loss_fake", "g_loss"}
    assert int(gan.g_optimizer.iterations.numpy()) == 3
    assert int(gan.d_optimizer.iterations.numpy()) == 6
