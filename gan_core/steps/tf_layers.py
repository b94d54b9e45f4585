"""Layers tuned for CPU training speed, same maths as Keras: fused BatchNorm, bottleneck convs.

FusedBatchNorm: Keras's BatchNormalization semantics on TensorFlow's fused kernel.

Why: Keras 3 normalises with a chain of separate ops (moments, casts, scale, shift), which on a CPU
in bf16 made a DC-GAN step ~7% slower here. ``FusedBatchNormV3`` does the same in one oneDNN kernel
(and one for the gradient). It is what Keras 2 used for 4-D inputs, i.e. what the seed notebook
ran: batch statistics in training, moving averages ``m = momentum * m + (1 - momentum) * batch``,
moving statistics at inference. The kernel averages the batch variance with Bessel's correction
(as Keras 2 did); it is corrected back to the plain batch variance that Keras 3's layer keeps, so
this layer and ``keras.layers.BatchNormalization`` (the JAX engine's) give the same statistics.
Variables and parameter count are the same as ``keras.layers.BatchNormalization`` (4 per channel).
Inputs must be NHWC; gamma/beta/statistics stay float32 under mixed precision.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="albumgan")
class FusedBatchNorm(keras.layers.Layer):
    """Batch normalisation over the last axis of a 4-D NHWC tensor, fused."""

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape) -> None:
        channels = (input_shape[-1],)
        # autocast=False: the fused kernel wants float32 parameters even for bf16/fp16 inputs.
        self.gamma = self.add_weight(
            shape=channels, initializer="ones", name="gamma", autocast=False
        )
        self.beta = self.add_weight(
            shape=channels, initializer="zeros", name="beta", autocast=False
        )
        self.moving_mean = self.add_weight(
            shape=channels,
            initializer="zeros",
            name="moving_mean",
            trainable=False,
            autocast=False,
        )
        self.moving_variance = self.add_weight(
            shape=channels,
            initializer="ones",
            name="moving_variance",
            trainable=False,
            autocast=False,
        )

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        update = bool(training) and self.trainable
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=self.gamma.value,
            offset=self.beta.value,
            mean=self.moving_mean.value,
            variance=self.moving_variance.value,
            epsilon=self.epsilon,
            # In training the kernel normalises with batch statistics and, given this factor,
            # returns the updated moving statistics; at inference it uses the moving ones.
            exponential_avg_factor=1.0 - self.momentum if update else 1.0,
            data_format="NHWC",
            is_training=update,
        )
        if update:
            self.moving_mean.assign(mean)
            self.moving_variance.assign(self._biased(variance, inputs))
        return outputs

    def _biased(self, averaged: tf.Tensor, inputs: tf.Tensor) -> tf.Tensor:
        """The kernel's moving variance with the batch term's Bessel factor taken back out.

        averaged = m * old + f * var * n / (n - 1), f = 1 - m, n = values per channel; the
        batch term is f * var * n / (n - 1), and subtracting 1/n of it leaves f * var.
        """
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], averaged.dtype)
        batch_term = averaged - self.momentum * self.moving_variance.value
        return averaged - batch_term / count

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


# ------------------------------------------------------------------------------------------------
# Convolutions at the 4x4 bottleneck with a matmul weight gradient.
#
# Why: the innermost blocks (D: 8x8 -> 4x4, G: 4x4 -> 8x8, 256 <-> 512 channels at 64 px) have
# tiny feature maps and wide channels; oneDNN's bf16 weight-gradient kernel runs those at a quarter
# of the machine's peak; they took ~17% of a bf16 training step's op time on a 2-core CPU. Their
# weight gradient is one matrix product of image patches with the output gradient, near peak.
# Forward pass and input gradient stay TensorFlow's own kernels; results are identical in float32
# (tested against TensorFlow's gradient).
# ------------------------------------------------------------------------------------------------

BOTTLENECK_SIDE = 4  # layers whose coarse feature map is at most this wide use the matmul gradient


def _patches(images: tf.Tensor, size: int, stride: int) -> tf.Tensor:
    """(B, H, W, C) -> (B * H' * W', size * size * C): the receptive field of each output pixel."""
    patches = tf.image.extract_patches(
        images,
        sizes=[1, size, size, 1],
        strides=[1, stride, stride, 1],
        rates=[1, 1, 1, 1],
        padding="SAME",
    )
    return tf.reshape(patches, [-1, size * size * images.shape[-1]])


def conv2d_patch_grad(inputs: tf.Tensor, kernel: tf.Tensor, stride: int) -> tf.Tensor:
    """``tf.nn.conv2d(inputs, kernel, stride, "SAME")`` whose kernel gradient is a matmul."""
    size = kernel.shape[0]

    @tf.custom_gradient
    def conv(x, w):
        def grad(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x),
                filter=w,
                out_backprop=dy,
                strides=[1, stride, stride, 1],
                padding="SAME",
            )
            dw = tf.matmul(
                _patches(x, size, stride), tf.reshape(dy, [-1, w.shape[-1]]), transpose_a=True
            )
            return dx, tf.reshape(dw, w.shape)

        return tf.nn.conv2d(x, w, stride, "SAME"), grad

    # A tensor, not the variable: custom_gradient differentiates w.r.t. its inputs only.
    return conv(inputs, tf.convert_to_tensor(kernel))


def conv2d_transpose_patch_grad(inputs: tf.Tensor, kernel: tf.Tensor, stride: int) -> tf.Tensor:
    """``tf.nn.conv2d_transpose`` (SAME, output = stride x input) with a matmul kernel gradient.

    ``kernel`` is (size, size, out_channels, in_channels), TensorFlow's transpose layout.
    """
    size, out_channels = kernel.shape[0], kernel.shape[2]
    shape = tf.shape(inputs)
    output_shape = tf.stack([shape[0], shape[1] * stride, shape[2] * stride, out_channels])

    @tf.custom_gradient
    def conv_transpose(x, w):
        def grad(dy):
            dx = tf.nn.conv2d(dy, w, stride, "SAME")
            dw = tf.matmul(
                _patches(dy, size, stride), tf.reshape(x, [-1, w.shape[-1]]), transpose_a=True
            )
            return dx, tf.reshape(dw, w.shape)

        return tf.nn.conv2d_transpose(x, w, output_shape, stride, "SAME"), grad

    return conv_transpose(inputs, tf.convert_to_tensor(kernel))


def _patch_grad_applies(layer: keras.layers.Layer, coarse_side: int | None) -> bool:
    return (
        layer.padding == "same"
        and layer.data_format == "channels_last"
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.kernel_size[0] == layer.kernel_size[1]
        and layer.strides[0] == layer.strides[1] > 1
        and coarse_side is not None
        and coarse_side <= BOTTLENECK_SIDE
    )


@keras.saving.register_keras_serializable(package="albumgan")
class BottleneckConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D``; at the 4x4 bottleneck its kernel gradient is a patch matmul."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        out_side = None if input_shape[1] is None else -(-input_shape[1] // self.strides[0])
        self.patch_grad = _patch_grad_applies(self, out_side)

    def convolution_op(self, inputs, kernel):
        if self.patch_grad:
            return conv2d_patch_grad(inputs, kernel, self.strides[0])
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="albumgan")
class BottleneckConv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose``; at the 4x4 bottleneck its kernel gradient is a matmul."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self.patch_grad = _patch_grad_applies(self, input_shape[1]) and self.output_padding is None

    def call(self, inputs):
        if not self.patch_grad:
            return super().call(inputs)
        outputs = conv2d_transpose_patch_grad(inputs, self.kernel, self.strides[0])
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)
