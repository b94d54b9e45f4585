"""Spectral normalisation (Miyato et al. 2018) of the discriminator's kernels (d_norm: spectral).

Each kernel W is divided by an estimate of its largest singular value sigma, so every layer of D
is at most 1-Lipschitz and D cannot sharpen its decision boundary without bound (its main way of
over-fitting a few hundred covers). sigma comes from one power iteration per training call, as
the paper does: with W reshaped to (fan_in, out) and u the running estimate of the top right
singular vector,

    v = W u / |W u|,   u' = W^T v / |W^T v|,   sigma = v^T W u'

u' is stored (a non-trainable weight, so it is in the checkpoint and a resumed run continues the
iteration where it stopped) and the gradient flows through sigma with u' and v held constant.
Outside training the stored u is used without updating it.

The iteration runs in float32 (on the kernel as the layer reads it) under mixed precision; the
normalised kernel is cast to the compute dtype. Written in ``keras.ops``: the same numbers on every
backend (tested in tests/gan_core/test_backends.py).
"""

from __future__ import annotations

import zlib

import keras
import numpy as np
from keras import ops

_EPSILON = 1e-12


def _unit(x):
    return x / ops.sqrt(ops.sum(ops.square(x)) + _EPSILON)


class _SpectralKernel:
    """What both layers share: the vector u and the normalised kernel."""

    def _add_singular_vector(self, size: int) -> None:
        # A fixed unit vector per layer name: the same start on every backend (Keras's seeded
        # initializers draw from each backend's own generator).
        start = np.random.default_rng(zlib.crc32(self.name.encode())).standard_normal(size)
        start = (start / np.linalg.norm(start)).astype(np.float32)
        self.singular_vector = self.add_weight(
            shape=(size,),
            initializer=lambda shape, dtype=None: ops.convert_to_tensor(start, dtype="float32"),
            name="singular_vector",
            trainable=False,
            autocast=False,
        )

    def normalized_kernel(self, training: bool):
        kernel = ops.convert_to_tensor(self.kernel.value, dtype="float32")
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        u = self.singular_vector.value
        v = ops.stop_gradient(_unit(ops.matmul(matrix, u)))
        u = ops.stop_gradient(_unit(ops.matmul(ops.transpose(matrix), v)))
        sigma = ops.sum(v * ops.matmul(matrix, u))
        if training:
            self.singular_vector.assign(u)
        return ops.cast(kernel / sigma, self.compute_dtype)


@keras.saving.register_keras_serializable(package="albumgan")
class SpectralConv2D(_SpectralKernel, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose kernel is spectrally normalised."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self._add_singular_vector(self.filters)

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, self.normalized_kernel(bool(training)))
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="albumgan")
class SpectralDense(_SpectralKernel, keras.layers.Dense):
    """``keras.layers.Dense`` whose kernel is spectrally normalised."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self._add_singular_vector(self.units)

    def call(self, inputs, training=False):
        outputs = ops.matmul(inputs, self.normalized_kernel(bool(training)))
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)
