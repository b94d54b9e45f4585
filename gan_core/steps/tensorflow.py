"""The TensorFlow engine: the tuned CPU path.

``DCGAN`` is one ``keras.Model`` whose ``train_step`` is the step described in
``steps/engine.py``; ``step_n`` runs it n times inside one ``tf.function`` (our
``steps_per_execution``), stopping early on a non-finite loss. It works with ``fit`` too:
``gan.compile(g_opt, d_opt); gan.fit(dataset)``. Randomness (noise, labels, DiffAugment) comes
from one ``tf.random.Generator`` whose state is checkpointed, so a resumed run replays it.

Batches come from an in-memory ``tf.data`` pipeline whose order is a pure function of
(seed, step): every epoch is a stateless permutation seeded by (seed, epoch), so a run resumed at
step S sees exactly the batches an uninterrupted run would, without replaying S steps of data.

The layers and optimizer here are the fused CPU kernels of ``tf_layers.py``/``tf_optimizer.py``
(same variables and maths as Keras's own, tested against them).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from albumgan.gan_core.augment import ADA_INTERVAL, ada_adjust, diff_augment, uniforms_needed
from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.contract import LOSSES
from albumgan.gan_core.steps.engine import (
    Engine,
    d_loss,
    ema_decay_at,
    g_loss,
    learning_rate_variable,
    lr_factor,
    r1_penalty,
    r1_weight,
)
from albumgan.gan_core.steps.tf_optimizer import FusedAdam


class DCGAN(keras.Model):
    """Generator + discriminator (+ optional EMA generator) trained adversarially.

    Args:
        generator: noise -> image in [-1, 1].
        discriminator: image -> logit of "real".
        cfg: the run's config: noise shape, label noise, DiffAugment ops, EMA decay, the seed of
            the in-graph RNG (noise, labels, augmentation; its state is checkpointed), and the
            toolbox keys (loss, R1, learning-rate schedule, EMA ramp-up, adaptive augmentation).
        ema_generator: a clone of ``generator`` tracking an exponential moving average, or None.
        ada_state: with ``augment_p: ada``, the variables [p, sum of sign(D(real))].
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        cfg: TrainConfig,
        ema_generator: keras.Model | None = None,
        ada_state: list | None = None,
    ) -> None:
        super().__init__(name="dcgan")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.cfg = cfg
        self.noise_shape = tuple(cfg.noise_shape)
        self.label_noise = float(cfg.label_noise)
        self.augment_ops = cfg.diffaugment_ops
        self.ema_decay = float(cfg.ema)
        self.ada_state = list(ada_state or [])
        self.rng = tf.random.Generator.from_seed(cfg.seed)
        # The step being trained: the schedule, lazy R1 and ADA read it (Engine.start sets it).
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._step_n = None

    def compile(self, g_optimizer: keras.Optimizer, d_optimizer: keras.Optimizer) -> None:
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, noise: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.generator(noise, training=training)

    def draw_inputs(self, batch) -> dict[str, tf.Tensor | tuple]:
        """One step's random inputs from the checkpointed RNG (see ``Engine.step_on``)."""
        inputs = {
            "noise": self.rng.normal(tf.concat([[batch], self.noise_shape], axis=0)),
            "real_labels": 1.0 - self.label_noise * self.rng.uniform([batch, 1]),
            "fake_labels": self.label_noise * self.rng.uniform([batch, 1]),
        }
        if self.augment_ops:  # D's real pass, D's fake pass, G's pass
            width = uniforms_needed(self.augment_ops, gated=self.cfg.ada)
            inputs["augment"] = tuple(self.rng.uniform([batch, width]) for _ in range(3))
        return inputs

    def _augment(self, images: tf.Tensor, uniforms, p) -> tf.Tensor:
        if uniforms is None:
            return images
        return diff_augment(images, self.augment_ops, uniforms, p)

    def _d_update(self, images: tf.Tensor, labels: tf.Tensor, real: bool, step, r1=False):
        """One D update on a batch as D sees it (augmented); with ``r1``, the R1 penalty is
        added on every ``r1_every``-th step. Returns D's loss (without the penalty) and logits."""
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            if r1:
                logit, penalty = tf.cond(
                    step % self.cfg.r1_every == 0,
                    lambda: self._logit_and_r1(images),
                    lambda: (self.discriminator(images, training=True), tf.constant(0.0)),
                )
            else:
                logit, penalty = self.discriminator(images, training=True), 0.0
            loss = d_loss(self.cfg.loss, logit, labels, real)
            scaled = self.d_optimizer.scale_loss(loss + penalty)
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, d_vars), d_vars))
        return loss, logit

    def _logit_and_r1(self, images: tf.Tensor):
        """D's logits and the weighted R1 term: the gradient of the logits with respect to the
        images, recorded on the caller's tape (a gradient of a gradient)."""
        with tf.GradientTape() as inner:
            inner.watch(images)
            logit = self.discriminator(images, training=True)
        image_grad = inner.gradient(logit, images)  # of the logits' sum
        return logit, r1_weight(self.cfg) * r1_penalty(image_grad)

    def train_step(self, data: tf.Tensor) -> dict[str, tf.Tensor]:
        real = tf.cast(data, tf.float32)
        return self.step_on(real, **self.draw_inputs(tf.shape(real)[0]))

    def step_on(
        self, real, noise, real_labels, fake_labels, augment=(None, None, None)
    ) -> dict[str, tf.Tensor]:
        """One step on given inputs: the real batch and every random draw; the step number is
        ``step_counter``, advanced by one."""
        cfg = self.cfg
        step = self.step_counter.value()
        factor = lr_factor(cfg, step)
        if factor is not None:  # this step's learning rates
            learning_rate_variable(self.d_optimizer).assign(cfg.lr_d * factor)
            learning_rate_variable(self.g_optimizer).assign(cfg.lr_g * factor)
        p = self.ada_state[0].value if self.ada_state else None
        g_vars = self.generator.trainable_variables
        # Only G's weights are watched, so the D updates below are not recorded on this tape.
        with tf.GradientTape(watch_accessed_variables=False) as g_tape:
            g_tape.watch([v.value for v in g_vars])
            fake = self.generator(noise, training=True)
            d_loss_real, real_logit = self._d_update(
                self._augment(real, augment[0], p), real_labels, True, step, r1=cfg.r1
            )
            d_loss_fake, _ = self._d_update(
                self._augment(tf.stop_gradient(fake), augment[1], p), fake_labels, False, step
            )
            # G's loss through D in training mode (batch statistics, as the seed's Keras did),
            # with D's non-trainable state (BatchNorm statistics, spectral-norm vectors) put
            # back: D stays untouched by the G update.
            d_state = [tf.identity(v) for v in self.discriminator.non_trainable_variables]
            logit = self.discriminator(self._augment(fake, augment[2], p), training=True)
            loss_g = g_loss(cfg.loss, logit, real_labels)
            scaled_g_loss = self.g_optimizer.scale_loss(loss_g)
        for var, value in zip(self.discriminator.non_trainable_variables, d_state):
            var.assign(value)
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(scaled_g_loss, g_vars), g_vars))
        if self.ema_generator is not None:
            self._update_ema(step)
        if self.ada_state:
            self._ada_step(real_logit, step)
        self.step_counter.assign_add(1)
        return {"d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake, "g_loss": loss_g}

    def _update_ema(self, step) -> None:
        batch = self.cfg.batch_size
        decay = ema_decay_at(self.ema_decay, self.cfg.ema_rampup, step, batch)
        for ema_var, var in zip(
            self.ema_generator.trainable_variables, self.generator.trainable_variables
        ):
            ema_var.assign(decay * ema_var + (1.0 - decay) * var)

    def _ada_step(self, real_logit, step) -> None:
        """Add this batch's signs of D's real logits; every ADA_INTERVAL steps, move p."""
        p_var, sum_var = self.ada_state
        sign_sum = sum_var.value + tf.reduce_sum(tf.sign(real_logit))
        adjust = (step + 1) % ADA_INTERVAL == 0
        images = ADA_INTERVAL * self.cfg.batch_size
        moved = ada_adjust(p_var.value, sign_sum, images, self.cfg.ada_target, self.cfg.ada_speed)
        p_var.assign(tf.where(adjust, moved, p_var.value))
        sum_var.assign(tf.where(adjust, 0.0, sign_sum))

    def step_n(self, iterator, n: int) -> dict[str, tf.Tensor]:
        """Run ``n`` train steps in one compiled call.

        Returns:
            Sums of each loss over the steps run, ``steps`` (how many ran) and ``finite`` (False
            when a loss was NaN/Inf; the loop stops right after that step).
        """
        if self._step_n is None:
            self._step_n = tf.function(self._step_n_impl, reduce_retracing=True)
        return self._step_n(iterator, tf.constant(n, tf.int32))

    def _step_n_impl(self, iterator, n: tf.Tensor) -> dict[str, tf.Tensor]:
        sums = {name: tf.constant(0.0) for name in LOSSES}
        done = tf.constant(0)
        finite = tf.constant(True)
        for _ in tf.range(n):
            logs = self.train_step(next(iterator))
            sums = {name: sums[name] + logs[name] for name in LOSSES}
            done += 1
            finite = tf.reduce_all([tf.math.is_finite(logs[name]) for name in LOSSES])
            if not finite:
                break
        return {**sums, "steps": done, "finite": finite}


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
    first_epoch, offset = divmod(start_step * batch_size, n)
    pixels = tf.constant(images)

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(perm)

    indices = (
        tf.data.Dataset.counter(start=first_epoch)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
    )
    batches = indices.map(
        lambda idx: tf.cast(tf.gather(pixels, idx), tf.float32) / 127.5 - 1.0,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return batches.prefetch(tf.data.AUTOTUNE)


class TensorFlowEngine(Engine):
    """``DCGAN.step_n`` over the ``tf.data`` pipeline; fused layers and Adam (CPU speed)."""

    backend = "tensorflow"
    fast_layers = True

    def __init__(self, cfg, policy, images=None) -> None:
        super().__init__(cfg, policy, images)
        self.gan = DCGAN(
            self.generator, self.discriminator, cfg, self.ema_generator, self.ada_state
        )
        self.gan.compile(self.g_optimizer, self.d_optimizer)
        self._batches = None

    def make_optimizer(self, learning_rate: float) -> keras.Optimizer:
        opt = FusedAdam(learning_rate=learning_rate, beta_1=self.cfg.beta1, beta_2=self.cfg.beta2)
        if self.policy == "mixed_float16":  # fp16 gradients underflow without loss scaling
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def rng_state(self) -> np.ndarray:
        return self.gan.rng.state.numpy()

    def restore_rng(self, state: np.ndarray | None, step: int) -> None:
        if state is not None:
            self.gan.rng.reset(state)
        else:  # another backend's checkpoint: a fresh stream, still a function of (seed, step)
            self.gan.rng.reset_from_seed(self.cfg.seed * 1_000_003 + step)

    def start(self, step: int) -> None:
        super().start(step)
        self.gan.step_counter.assign(step)
        self._batches = iter(make_batches(self.images, self.cfg.batch_size, self.cfg.seed, step))

    def step_on(self, inputs: dict) -> dict[str, float]:
        inputs = {k: (tuple(v) if k == "augment" else v) for k, v in inputs.items()}
        losses = self.gan.step_on(**inputs)
        self.step += 1
        return {name: float(losses[name]) for name in LOSSES}

    def run(self, n: int) -> dict[str, float]:
        out = {key: value.numpy() for key, value in self.gan.step_n(self._batches, n).items()}
        self.step += int(out["steps"])
        result = {
            **{name: float(out[name]) for name in LOSSES},
            "steps": int(out["steps"]),
            "finite": bool(out["finite"]),
        }
        if self.ada_state:
            result["augment_p"] = float(self.ada_state[0].numpy())
        return result
