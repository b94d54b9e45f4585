"""The engine: models, optimizers and the compiled training step, behind one small interface.

The loop (``gan_core.training``), the callbacks and the checkpoints see only ``Engine``; each
backend's module subclasses it with its compiled step (``steps/tensorflow.py``,
``steps/jax.py``). What is written here is plain Keras and runs on every backend:

- the networks (``gan_core.models``), the EMA copy, Adam for G and D (the seed's optimizers);
- the loss, binary cross-entropy on D's probabilities, as the seed compiled its models;
- sampling, with the EMA generator's BatchNorm statistics re-estimated first;
- ``export_generator``: ``generator.keras`` in plain layers and float32, loadable anywhere.

The step itself, per training step (the seed notebook's algorithm, in one compiled function):

1. noise ~ N(0, 1); labels real ~ U[1 - label_noise, 1], fake ~ U[0, label_noise];
2. G forward once; D update on the real batch; D update on the fake batch (G's output, gradient
   stopped): two optimizer steps, as the seed's two ``train_on_batch`` calls;
3. G update through the updated D, targets = the noisy real labels; D's BatchNorm statistics
   from this pass are discarded, so D is untouched by the G update;
4. EMA of G's trainable weights.

The seed generated the fake batch twice (``predict`` for D, again in the combined model for G);
G's weights do not change in between, so one forward pass gives the same gradient for less work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
from keras import ops

from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.models import build_discriminator, build_generator

EMA_STAT_BATCHES, EMA_STAT_SEED = 8, 20_240


def ema_statistics_noise(noise_shape: tuple[int, ...]) -> list[np.ndarray]:
    """The fixed latents of the EMA generator's BatchNorm re-estimation: one batch per pass."""
    return [
        np.random.default_rng([EMA_STAT_SEED, i])
        .standard_normal((64, *noise_shape))
        .astype(np.float32)
        for i in range(EMA_STAT_BATCHES)
    ]


@contextmanager
def batch_norms(model: keras.Model) -> Iterator[list]:
    """The model's BatchNorm layers (fused or plain); the caller may change their momentum,
    which is put back on exit."""
    norms = [layer for layer in model.layers if hasattr(layer, "moving_variance")]
    momenta = [layer.momentum for layer in norms]
    try:
        yield norms
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def bce(target, prob):
    """Mean binary cross-entropy of probabilities (Keras's clipping), as the seed's models."""
    return ops.mean(keras.losses.binary_crossentropy(target, prob))


class Engine:
    """Models and optimizers of one run, and the step that trains them.

    Subclasses set ``backend`` and ``fast_layers`` and implement ``run``; ``start`` must be
    called (after restoring a checkpoint, if any) before the first ``run``.

    Args:
        cfg: the run's configuration.
        policy: the Keras dtype policy (``gan_core.precision``).
        images: (N, R, R, 3) uint8 training images; None to only sample or restore.
    """

    backend = ""
    fast_layers = False  # TensorFlow's fused CPU layers (same variables as the plain ones)
    auto_steps_per_execution = 10  # steps per compiled call for steps_per_execution: 0

    def __init__(self, cfg: TrainConfig, policy: str, images: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.policy = policy
        self.images = images
        self.step = 0
        self.generator = build_generator(cfg, policy, self.fast_layers)
        self.discriminator = build_discriminator(cfg, policy, self.fast_layers)
        self.ema_generator = None
        if cfg.ema > 0:
            self.ema_generator = build_generator(cfg, policy, self.fast_layers)
            self.ema_generator.set_weights(self.generator.get_weights())
        self.g_optimizer = self.make_optimizer(cfg.lr_g)
        self.d_optimizer = self.make_optimizer(cfg.lr_d)
        # Slots exist before the first step, so a checkpoint can be restored into them.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def make_optimizer(self, learning_rate: float) -> keras.Optimizer:
        return keras.optimizers.Adam(learning_rate, beta_1=self.cfg.beta1, beta_2=self.cfg.beta2)

    # --- the training state, for checkpoints ---------------------------------------------------

    def variable_groups(self) -> dict[str, list]:
        """Every variable of the training state, by group, in a stable order (same on every
        backend: the fused and plain layers hold the same variables)."""
        self.sync()
        groups = {
            "generator": list(self.generator.variables),
            "discriminator": list(self.discriminator.variables),
            "g_optimizer": list(self.g_optimizer.variables),
            "d_optimizer": list(self.d_optimizer.variables),
        }
        if self.ema_generator is not None:
            groups["ema_generator"] = list(self.ema_generator.variables)
        return groups

    def rng_state(self) -> np.ndarray | None:
        """A stateful RNG's state to checkpoint; None when randomness is a function of the step."""
        return None

    def restore_rng(self, state: np.ndarray | None, step: int) -> None:
        """Put back ``rng_state()``; None: a checkpoint from another backend, reseed from step."""

    def sync(self) -> None:
        """Make the Keras variables hold the current training state (a no-op where they do)."""

    # --- training --------------------------------------------------------------------------------

    def start(self, step: int) -> None:
        """Train from ``step`` on (after any restore): the data order continues from there."""
        self.step = step

    def run(self, n: int) -> dict[str, float]:
        """Run up to ``n`` steps in one compiled call, stopping after a non-finite loss.

        Returns:
            Sums of each loss over the steps run, ``steps`` (how many ran) and ``finite``.
        """
        raise NotImplementedError

    def step_on(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        """One step on given inputs instead of drawn ones; how the backends are tested alike.

        Args:
            inputs: ``real`` (B, R, R, 3) in [-1, 1], ``noise`` (B, *noise_shape),
                ``real_labels`` and ``fake_labels`` (B, 1), and with DiffAugment ``augment``:
                three (B, k) arrays of U[0, 1) draws for D's real, D's fake and G's pass.

        Returns:
            The step's losses.
        """
        raise NotImplementedError

    # --- sampling --------------------------------------------------------------------------------

    def sampling_generator(self) -> keras.Model:
        """The generator to sample from: the EMA copy when there is one, else G.

        G's BatchNorm moving statistics belong to G's weights, not to their average, so the EMA
        copy's statistics are re-estimated first: the exact mean of the batch statistics of
        ``EMA_STAT_BATCHES`` training-mode passes on fixed noise (repeatable, and the training
        RNG is not touched).
        """
        self.sync()
        if self.ema_generator is None:
            return self.generator
        with batch_norms(self.ema_generator) as norms:
            for i, noise in enumerate(ema_statistics_noise(self.cfg.noise_shape)):
                for layer in norms:  # momentum i/(i+1) makes the moving value a plain running mean
                    layer.momentum = i / (i + 1)
                self.ema_generator(noise, training=True)
        return self.ema_generator

    def sample(self, noise: np.ndarray, batch: int = 64) -> np.ndarray:
        """Images in [-1, 1] (float32) from the sampling generator, inference mode."""
        generator = self.sampling_generator()
        parts = [
            np.asarray(generator(noise[i : i + batch], training=False), np.float32)
            for i in range(0, len(noise), batch)
        ]
        return np.concatenate(parts)

    def export_generator(self, path: Path) -> None:
        """Save the sampling generator as plain Keras layers in float32, atomically."""
        plain = build_generator(self.cfg, "float32", fast=False)
        plain.set_weights(self.sampling_generator().get_weights())
        tmp = path.with_name(f".{path.stem}.tmp.keras")  # Keras insists on the suffix
        plain.save(tmp)
        os.replace(tmp, path)
