"""Generator and discriminator networks.

``arch="seed"`` is the seed notebook's (MLWhiz's) DC-GAN layer for layer. At 64 px with noise 100::

    G: noise (1,1,N) -> ConvT 512 k4 s1 valid -> ConvT 256/128/64 k4 s2 (each + BN(.5) + LReLU(.2))
       -> Conv 64 k3 + BN + LReLU -> ConvT 3 k4 s2 -> tanh           (3,616,771 parameters)
    D: Conv 64 k4 s2 + LReLU -> Conv 128/256/512 k4 s2 (each + BN(0.5) + LReLU) -> Flatten
       -> Dense 1 (the logit; the seed's sigmoid is applied by the loss) (2,768,321 parameters)

``arch="dcgan"`` is Radford et al.'s layout (ReLU generator, no extra 3x3 conv, BN momentum 0.9).

For other resolutions the number of stride-2 blocks follows from the side length (4 px after the
first layer, doubled per block), widths double per block away from the image and are capped at
8x the base width, so 64 px with width 64 gives exactly the seed's channels.

``d_norm`` picks D's normalisation: the seed's BatchNorm, spectral normalisation of every kernel
(``gan_core/spectral.py``, no BatchNorm) or none.

Every layer takes the run's dtype policy explicitly (no global mixed-precision state), and the
outputs (G's tanh, D's logit) are float32 so losses stay in full precision.

``fast=True`` swaps in the TensorFlow-only layers tuned for CPU training (``steps/tf_layers.py``:
fused BatchNorm, matmul weight gradients at the bottleneck). They hold the same variables in the
same order, so weights and checkpoints move freely between the two forms; everything saved for
users (``generator.keras``) is the plain form, which loads on every backend. Under R1, whose
gradient of a gradient the fused kernels do not have, D keeps the plain form, with BatchNorm
statistics whose second derivatives are exact (``ExactMomentsBatchNorm``).
"""

from __future__ import annotations

import math
import zlib
from types import SimpleNamespace

import keras
from keras import layers, ops

from albumgan.gan_core.config import TrainConfig

_WIDTH_CAP = 8  # widest block = 8 x base width (512 for the seed's 64)


def num_blocks(resolution: int) -> int:
    """Stride-2 blocks between 4 px and ``resolution``, counting the last (to-RGB) layer."""
    return int(math.log2(resolution)) - 2


def _widths(base: int, count: int) -> list[int]:
    """Channel widths from the image side inwards: base, 2*base, ... capped at 8*base."""
    return [base * min(2**i, _WIDTH_CAP) for i in range(count)]


def _kernel_init(cfg: TrainConfig, name: str) -> keras.initializers.Initializer:
    """Glorot-uniform (Keras's default) seeded by (cfg.seed, layer name): the initial weights
    follow the run's seed on every backend without touching any global random state."""
    return keras.initializers.GlorotUniform(seed=zlib.crc32(f"{cfg.seed}/{name}".encode()))


def _layer_kinds(fast: bool) -> SimpleNamespace:
    """The convolution and normalisation classes: Keras's own, or the fused TensorFlow ones."""
    if fast:
        from albumgan.gan_core.steps.tf_layers import (
            BottleneckConv2D,
            BottleneckConv2DTranspose,
            FusedBatchNorm,
        )

        return SimpleNamespace(
            conv=BottleneckConv2D, conv_t=BottleneckConv2DTranspose, norm=FusedBatchNorm
        )
    return SimpleNamespace(
        conv=layers.Conv2D, conv_t=layers.Conv2DTranspose, norm=layers.BatchNormalization
    )


class ExactMomentsBatchNorm(layers.BatchNormalization):
    """BatchNormalization whose batch variance has exact second derivatives: D's BatchNorm
    under R1, whose penalty differentiates D's input gradient once more. TensorFlow's moments
    compute the variance around the batch mean with its gradient stopped, which is exact to the
    first derivative only (a bias before the norm then gets a gradient it cannot have). Same
    variables and values as the plain layer; JAX's moments are exact already."""

    def _moments(self, inputs, mask):
        if mask is not None:
            return super()._moments(inputs, mask)
        x = ops.cast(inputs, "float32")  # statistics in float32, as Keras's own moments
        mean = ops.mean(x, axis=self._reduction_axes, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=self._reduction_axes)
        mean = ops.squeeze(mean, axis=self._reduction_axes)
        return ops.cast(mean, inputs.dtype), ops.cast(variance, inputs.dtype)


def build_generator(cfg: TrainConfig, dtype: str = "float32", fast: bool = False) -> keras.Model:
    """The generator: noise of ``cfg.noise_shape`` -> image in [-1, 1], (res, res, 3), float32."""
    kinds = _layer_kinds(fast)
    seed_arch = cfg.arch == "seed"
    momentum = 0.5 if seed_arch else 0.9
    blocks = num_blocks(cfg.resolution)  # 4 at 64 px: three hidden ConvT s2 + the to-RGB ConvT
    widths = _widths(cfg.g_width, blocks)[::-1]  # e.g. [512, 256, 128, 64]

    def conv(kind, name: str, width: int, kernel: int, stride: int, padding: str = "same"):
        init = _kernel_init(cfg, name)
        return kind(width, kernel, strides=stride, padding=padding, dtype=dtype, name=name,
                    kernel_initializer=init)  # fmt: skip

    def norm_act(x, name: str):
        x = kinds.norm(momentum=momentum, dtype=dtype, name=f"{name}_bn")(x)
        if seed_arch:
            return layers.LeakyReLU(negative_slope=0.2, dtype=dtype, name=f"{name}_act")(x)
        return layers.ReLU(dtype=dtype, name=f"{name}_act")(x)

    noise = keras.Input(shape=cfg.noise_shape, name="noise")
    x = noise
    if len(cfg.noise_shape) == 1:
        x = layers.Reshape((1, 1, cfg.noise_dim), dtype=dtype, name="to_1x1")(x)
    x = norm_act(conv(kinds.conv_t, "project", widths[0], 4, 1, "valid")(x), "project")
    for i, width in enumerate(widths[1:], start=1):
        x = norm_act(conv(kinds.conv_t, f"up{i}", width, 4, 2)(x), f"up{i}")
    if seed_arch:  # the notebook's extra 3x3 conv before the output layer
        x = norm_act(conv(kinds.conv, "refine", widths[-1], 3, 1)(x), "refine")
    x = conv(kinds.conv_t, "to_rgb", 3, 4, 2)(x)
    image = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(noise, image, name="generator")


def build_discriminator(
    cfg: TrainConfig, dtype: str = "float32", fast: bool = False
) -> keras.Model:
    """The discriminator: image (res, res, 3) in [-1, 1] -> logit of "real", float32."""
    kinds = _layer_kinds(fast and not cfg.r1)
    conv, dense, norm = kinds.conv, layers.Dense, kinds.norm
    if cfg.r1:
        norm = ExactMomentsBatchNorm
    if cfg.d_norm == "spectral":
        from albumgan.gan_core.spectral import SpectralConv2D, SpectralDense

        conv, dense = SpectralConv2D, SpectralDense
    momentum = 0.5 if cfg.arch == "seed" else 0.9
    widths = _widths(cfg.d_width, num_blocks(cfg.resolution))  # e.g. [64, 128, 256, 512]

    image = keras.Input(shape=(cfg.resolution, cfg.resolution, 3), name="image")
    x = image
    for i, width in enumerate(widths):
        name = f"down{i}"
        x = conv(width, 4, strides=2, padding="same", dtype=dtype, name=name,
                 kernel_initializer=_kernel_init(cfg, name))(x)  # fmt: skip
        if i > 0 and cfg.d_norm == "batch":  # none on the input block, as in DCGAN
            x = norm(momentum=momentum, dtype=dtype, name=f"{name}_bn")(x)
        x = layers.LeakyReLU(negative_slope=0.2, dtype=dtype, name=f"{name}_act")(x)
    x = layers.Flatten(dtype=dtype, name="flatten")(x)
    x = dense(1, dtype=dtype, name="logit", kernel_initializer=_kernel_init(cfg, "logit"))(x)
    # The seed's last layer was a float32 sigmoid; the loss applies it now (engine.bce), so
    # the other losses can read the logit. Same cast, same numbers.
    logit = layers.Activation("linear", dtype="float32", name="logit_float32")(x)
    return keras.Model(image, logit, name="discriminator")
