"""The engine: models, optimizers and the compiled training step, behind one small interface.

The loop (``gan_core.training``), the callbacks and the checkpoints see only ``Engine``; each
backend's module subclasses it with its compiled step (``steps/tensorflow.py``,
``steps/jax.py``). What is written here is plain Keras and runs on every backend:

- the networks (``gan_core.models``), the EMA copy, Adam for G and D (the seed's optimizers);
- the losses (``cfg.loss``): the seed's binary cross-entropy on D's probabilities, or the
  non-saturating or hinge loss on D's logits; the R1 penalty; the learning-rate schedule and the
  EMA ramp-up as functions of the step; the adaptive-augmentation state (p and the running sum of
  the signs of D's real logits), checkpointed with the rest;
- sampling, with the EMA generator's BatchNorm statistics re-estimated first;
- ``export_generator``: ``generator.keras`` in plain layers and float32, loadable anywhere.

The step itself, per training step (the seed notebook's algorithm, in one compiled function):

1. noise ~ N(0, 1); labels real ~ U[1 - label_noise, 1], fake ~ U[0, label_noise] (read by
   ``bce`` only); the learning rates for this step (``lr_schedule``);
2. G forward once; D update on the real batch (plus R1 on R1 steps); D update on the fake batch
   (G's output, gradient stopped): two optimizer steps, as the seed's two ``train_on_batch``;
3. G update through the updated D, targets = the noisy real labels; D's BatchNorm statistics
   (and spectral-norm vectors) from this pass are discarded, so D is untouched by the G update;
4. EMA of G's trainable weights; with ``augment_p: ada``, the signs of D's real logits are
   summed and p is adjusted every ``ADA_INTERVAL`` steps.

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


def bce(target, logit):
    """Mean binary cross-entropy of D's probabilities, as the seed's models: the sigmoid the
    seed's last layer applied (Keras's own: on TensorFlow the loss then reads the logit), then
    Keras's clipped cross-entropy."""
    return ops.mean(keras.losses.binary_crossentropy(target, keras.activations.sigmoid(logit)))


def d_loss(kind: str, logit, labels, real: bool):
    """D's loss on one batch of real (``real``) or fake images, from its logits."""
    if kind == "bce":
        return bce(labels, logit)
    if kind == "nonsaturating":  # -log sigmoid(l) on reals, -log(1 - sigmoid(l)) on fakes
        return ops.mean(ops.softplus(-logit if real else logit))
    return ops.mean(ops.relu(1.0 - logit if real else 1.0 + logit))  # hinge


def g_loss(kind: str, logit, real_labels):
    """G's loss from D's logits on its images."""
    if kind == "bce":
        return bce(real_labels, logit)
    if kind == "nonsaturating":
        return ops.mean(ops.softplus(-logit))
    return -ops.mean(logit)  # hinge


def r1_penalty(input_gradient):
    """Mescheder et al.'s R1 term before its weight: the batch mean of |grad_x D(x)|^2."""
    return ops.mean(ops.sum(ops.square(input_gradient), axis=(1, 2, 3)))


def r1_weight(cfg: TrainConfig) -> float:
    """gamma / 2, times the interval: lazy R1 (StyleGAN2) applies it every ``r1_every`` steps."""
    return cfg.r1_gamma / 2 * cfg.r1_every


def lr_factor(cfg: TrainConfig, step):
    """The learning rates' multiplier at ``step`` (a tensor), 1 at step 0; None: constant."""
    if cfg.lr_schedule == "constant":
        return None
    progress = ops.clip(ops.cast(step, "float32") / cfg.steps, 0.0, 1.0)
    if cfg.lr_schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + ops.cos(np.pi * progress))  # cosine


def ema_decay_at(decay, rampup, step, batch: int):
    """The EMA decay at ``step``. Without ramp-up (``rampup`` 0) the configured decay; with it,
    StyleGAN2's: the EMA's half-life in images, batch * ln 0.5 / ln decay, is capped at
    ``rampup`` x the images seen so far (decay 0 at step 0: the EMA starts as G). ``decay`` and
    ``rampup`` are numbers, or a packed member's traced values."""
    if isinstance(rampup, (int, float)) and rampup == 0:
        return decay
    half_life = batch * np.log(0.5) / ops.log(decay)
    capped = ops.minimum(half_life, ops.cast(step * batch, "float32") * rampup)
    ramped = ops.power(0.5, batch / ops.maximum(capped, 1e-8))
    return ops.where(rampup > 0, ramped, decay)  # a pack's member may have it off


def learning_rate_variable(optimizer: keras.Optimizer) -> keras.Variable:
    """The variable that holds an optimizer's learning rate (a schedule rewrites it per step)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own
    return inner._learning_rate  # a variable: the learning rate is a float, not a schedule


def learning_rate_index(optimizer: keras.Optimizer) -> int:
    """Where the learning rate sits in ``optimizer.variables`` (the state the JAX step carries)."""
    target = learning_rate_variable(optimizer)
    for i, var in enumerate(optimizer.variables):
        if var is target:
            return i
    raise RuntimeError("the optimizer's learning rate is not one of its variables")


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
        # Adaptive augmentation: p, and the sum of sign(D(real)) since p last moved.
        self.ada_state: list = []
        if cfg.ada:
            self.ada_state = [
                keras.Variable(0.0, dtype="float32", trainable=False, name=name)
                for name in ("ada_p", "ada_sign_sum")
            ]

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
        if self.ada_state:
            groups["augment"] = list(self.ada_state)
        return groups

    def augment_p(self) -> float | None:
        """Adaptive augmentation's current p; None without it."""
        self.sync()
        return float(self.ada_state[0].numpy()) if self.ada_state else None

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
            Sums of each loss over the steps run, ``steps`` (how many ran) and ``finite``; with
            ``augment_p: ada``, ``augment_p`` (p after the last step).
        """
        raise NotImplementedError

    def step_on(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        """One step on given inputs instead of drawn ones; how the backends are tested alike.

        Args:
            inputs: ``real`` (B, R, R, 3) in [-1, 1], ``noise`` (B, *noise_shape),
                ``real_labels`` and ``fake_labels`` (B, 1), and with DiffAugment ``augment``:
                three (B, k) arrays of U[0, 1) draws for D's real, D's fake and G's pass
                (``k = uniforms_needed(ops, gated=cfg.ada)``). The step is ``self.step``.

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
