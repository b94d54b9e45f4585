"""The input pipeline: an in-memory image array -> shuffled, prefetched batches in [-1, 1].

No disk reads per step: the decoded uint8 array is held in memory and batches are gathered from
it. The order is a pure function of (seed, step): every epoch is a stateless permutation seeded
by (seed, epoch), so a resumed run starting at step S sees exactly the batches an uninterrupted
run would, without replaying S steps of data.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _epoch_order(n: int, seed: int):
    """A function epoch -> a dataset of that epoch's shuffled indices."""

    def order(epoch: tf.Tensor) -> tf.data.Dataset:
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(perm)

    return order


def make_batches(
    images: np.ndarray, batch_size: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """Endless batches of float32 images in [-1, 1], starting at batch number ``start_step``.

    Args:
        images: (N, R, R, 3) uint8, N >= 1.
        batch_size: images per batch; batches may span an epoch boundary.
        seed: shuffle seed.
        start_step: how many batches an earlier run already consumed.
    """
    n = len(images)
    first_element = start_step * batch_size
    first_epoch, offset = divmod(first_element, n)
    pixels = tf.constant(images)
    indices = (
        tf.data.Dataset.counter(start=first_epoch)
        .flat_map(_epoch_order(n, seed))
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
    )
    batches = indices.map(
        lambda idx: tf.cast(tf.gather(pixels, idx), tf.float32) / 127.5 - 1.0,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return batches.prefetch(tf.data.AUTOTUNE)
