"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout augmentation.

Applied to real and fake images in both the discriminator and the generator updates, so the
discriminator never sees un-augmented images and gradients flow through the augmentation to G.
All randomness comes from the caller's ``tf.random.Generator`` so a resumed run replays it.
Images are NHWC in [-1, 1].
"""

from __future__ import annotations

import tensorflow as tf

TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side, zero-filled
CUTOUT_RATIO = 0.5  # erase a square of half the side


def _color(x: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    batch = tf.shape(x)[0]
    brightness = rng.uniform([batch, 1, 1, 1], dtype=x.dtype) - 0.5
    x = x + brightness
    saturation = rng.uniform([batch, 1, 1, 1], dtype=x.dtype) * 2.0
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * saturation
    contrast = rng.uniform([batch, 1, 1, 1], dtype=x.dtype) + 0.5
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return mean + (x - mean) * contrast


def _translation(x: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    pad_h = tf.cast(tf.cast(height, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
    pad_w = tf.cast(tf.cast(width, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
    shift_y = rng.uniform([batch, 1], minval=-pad_h, maxval=pad_h + 1, dtype=tf.int32)
    shift_x = rng.uniform([batch, 1], minval=-pad_w, maxval=pad_w + 1, dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
    rows = tf.range(height)[None, :] + pad_h + shift_y  # (batch, height)
    cols = tf.range(width)[None, :] + pad_w + shift_x  # (batch, width)
    x = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def _cutout(x: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    cut_h = tf.cast(tf.cast(height, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
    cut_w = tf.cast(tf.cast(width, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
    # Centres may sit near the border, so the erased square can be partly outside the image.
    centre_y = rng.uniform([batch, 1, 1], maxval=height + (1 - cut_h % 2), dtype=tf.int32)
    centre_x = rng.uniform([batch, 1, 1], maxval=width + (1 - cut_w % 2), dtype=tf.int32)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = (tf.abs(ys - centre_y) < (cut_h + 1) // 2) & (
        tf.abs(xs - centre_x) < (cut_w + 1) // 2
    )
    keep = tf.cast(tf.logical_not(inside), x.dtype)[..., None]
    return x * keep


OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: tf.Tensor, ops: tuple[str, ...], rng: tf.random.Generator) -> tf.Tensor:
    """Apply ``ops`` (names from ``OPS``, in order) to a batch of images; identity when empty."""
    for name in ops:
        x = OPS[name](x, rng)
    return x
