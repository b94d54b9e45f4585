"""Network shapes, the seed architecture's exact parameter counts, and the two forms of each
network (plain Keras layers for JAX and exports, fused TensorFlow layers for CPU speed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.models import build_discriminator, build_generator
from albumgan.gan_core.steps.tf_layers import (
    BottleneckConv2D,
    BottleneckConv2DTranspose,
    FusedBatchNorm,
)


def test_seed_arch_parameter_counts_at_64px():
    cfg = TrainConfig(resolution=64, noise_shape=(1, 1, 100), arch="seed")
    assert build_generator(cfg).count_params() == 3_616_771
    assert build_discriminator(cfg).count_params() == 2_768_321


@pytest.mark.parametrize("fast", [False, True])
def test_seed_generator_layers_in_order(fast):
    g = build_generator(TrainConfig(), fast=fast)
    convs = [
        (
            "Conv2DTranspose" if isinstance(layer, keras.layers.Conv2DTranspose) else "Conv2D",
            layer.filters,
            layer.kernel_size,
            layer.strides,
        )
        for layer in g.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
    ]
    assert convs == [
        ("Conv2DTranspose", 512, (4, 4), (1, 1)),
        ("Conv2DTranspose", 256, (4, 4), (2, 2)),
        ("Conv2DTranspose", 128, (4, 4), (2, 2)),
        ("Conv2DTranspose", 64, (4, 4), (2, 2)),
        ("Conv2D", 64, (3, 3), (1, 1)),
        ("Conv2DTranspose", 3, (4, 4), (2, 2)),
    ]
    norm = FusedBatchNorm if fast else keras.layers.BatchNormalization
    assert [layer.momentum for layer in g.layers if isinstance(layer, norm)] == [0.5] * 5


def test_plain_and_fused_forms_hold_the_same_variables_and_compute_the_same():
    cfg = TrainConfig(resolution=32, g_width=8, d_width=8, noise_shape=(1, 1, 16))
    for build in (build_generator, build_discriminator):
        plain, fast = build(cfg), build(cfg, fast=True)
        assert [(v.path, v.shape) for v in plain.variables] == [
            (v.path, v.shape) for v in fast.variables
        ]
        for a, b in zip(plain.get_weights(), fast.get_weights()):
            np.testing.assert_array_equal(a, b)  # same seeded initial weights too
    g_plain, g_fast = build_generator(cfg), build_generator(cfg, fast=True)
    noise = np.random.default_rng(0).standard_normal((4, 1, 1, 16)).astype(np.float32)
    for training in (False, True):
        np.testing.assert_allclose(
            g_plain(noise, training=training), g_fast(noise, training=training), atol=1e-5
        )


@pytest.mark.parametrize("resolution", [16, 32, 64, 128, 256, 512])
@pytest.mark.parametrize("arch", ["seed", "dcgan"])
def test_shapes_for_each_resolution(resolution, arch):
    cfg = TrainConfig(resolution=resolution, arch=arch, g_width=8, d_width=8)
    g, d = build_generator(cfg), build_discriminator(cfg)
    noise = np.random.default_rng(0).standard_normal((2, 1, 1, 100)).astype(np.float32)
    images = np.asarray(g(noise, training=False))
    assert images.shape == (2, resolution, resolution, 3)
    assert images.min() >= -1 and images.max() <= 1
    logit = d(images, training=False)
    assert tuple(logit.shape) == (2, 1) and logit.dtype.name == "float32"
    assert np.all(np.isfinite(np.asarray(logit)))  # a logit: the loss applies the sigmoid


@pytest.mark.parametrize("g_width, d_width", [(96, 128), (128, 96)])
@pytest.mark.parametrize("d_norm", ["batch", "spectral"])
def test_widths_96_and_128_at_64px_build_and_take_gradients(g_width, d_width, d_norm):
    """The recipe sweep's widths: both networks at 64 px, D's output a logit with a gradient for
    every trainable weight (a width the blocks cannot divide would fail to build)."""
    cfg = TrainConfig(resolution=64, g_width=g_width, d_width=d_width, d_norm=d_norm)
    g, d = build_generator(cfg), build_discriminator(cfg)
    assert g.get_layer("project").filters == 8 * g_width
    noise = tf.random.normal((2, 1, 1, 100), seed=0)
    with tf.GradientTape() as tape:
        logit = d(g(noise, training=True), training=True)
        loss = tf.reduce_mean(logit)
    grads = tape.gradient(loss, g.trainable_weights + d.trainable_weights)
    assert tuple(logit.shape) == (2, 1)
    assert all(grad is not None and np.all(np.isfinite(grad)) for grad in grads)


def test_flat_noise_shape_and_width():
    cfg = TrainConfig(noise_shape=(128,), g_width=32, d_width=16)
    g = build_generator(cfg)
    assert g.input_shape == (None, 128)
    assert g.get_layer("project").filters == 256  # 8 x width at 4 px
    assert build_discriminator(cfg).get_layer("down0").filters == 16


def test_mixed_precision_outputs_are_float32():
    cfg = TrainConfig(resolution=16, g_width=8, d_width=8)
    g = build_generator(cfg, "mixed_bfloat16")
    d = build_discriminator(cfg, "mixed_bfloat16")
    out = g(np.zeros((1, 1, 1, 100), np.float32), training=True)
    assert out.dtype.name == "float32" and d(out).dtype.name == "float32"
    assert g.get_layer("up1").compute_dtype == "bfloat16"
    assert {v.dtype for v in g.weights} == {"float32"}  # variables stay float32


def test_fused_batchnorm_matches_keras_batchnorm():
    x = np.random.default_rng(1).normal(2.0, 3.0, (8, 4, 4, 5)).astype(np.float32)
    ours, ref = FusedBatchNorm(momentum=0.5), keras.layers.BatchNormalization(momentum=0.5)
    np.testing.assert_allclose(ours(x, training=True), ref(x, training=True), atol=1e-5)
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), rtol=1e-5)
    # Keras 3's statistics (plain batch variance), not the kernel's Bessel-corrected ones: the
    # JAX engine's plain BatchNormalization keeps the same.
    expected_var = 0.5 * 1.0 + 0.5 * x.reshape(-1, 5).var(axis=0)
    np.testing.assert_allclose(ours.moving_variance.numpy(), expected_var, rtol=1e-5)
    np.testing.assert_allclose(
        ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-5
    )
    ours(x, training=True)  # a second update starts from a non-trivial moving variance
    ref(x, training=True)
    np.testing.assert_allclose(
        ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-5
    )
    assert ours.count_params() == ref.count_params() == 20
    before = ours.moving_mean.numpy().copy()
    ours(x, training=False)  # inference never touches the statistics
    np.testing.assert_array_equal(ours.moving_mean.numpy(), before)


def _grads(layer, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * dy)
    return y, tape.gradient(loss, [x, layer.kernel.value, layer.bias.value])


@pytest.mark.parametrize(
    "ours, reference, in_shape",
    [
        (BottleneckConv2D, keras.layers.Conv2D, (3, 8, 8, 6)),
        (BottleneckConv2DTranspose, keras.layers.Conv2DTranspose, (3, 4, 4, 6)),
    ],
)
def test_bottleneck_convs_match_keras_values_and_gradients(ours, reference, in_shape):
    rng = np.random.default_rng(0)
    a = ours(5, 4, strides=2, padding="same")
    b = reference(5, 4, strides=2, padding="same")
    x = tf.constant(rng.normal(size=in_shape).astype(np.float32))
    a.build(x.shape)
    b.build(x.shape)
    b.set_weights(a.get_weights())
    assert a.patch_grad  # the 4x4 side takes the matmul path
    out_shape = b.compute_output_shape(x.shape)
    dy = tf.constant(rng.normal(size=out_shape).astype(np.float32))
    ya, ga = _grads(a, x, dy)
    yb, gb = _grads(b, x, dy)
    np.testing.assert_allclose(ya, yb, atol=1e-5)
    for got, want in zip(ga, gb):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_only_the_bottleneck_layers_take_the_matmul_gradient():
    cfg = TrainConfig()
    layers_ = build_generator(cfg, fast=True).layers + build_discriminator(cfg, fast=True).layers
    patched = sorted(layer.name for layer in layers_ if getattr(layer, "patch_grad", False))
    assert patched == ["down3", "up1"]
