"""The DC-GAN as one ``keras.Model`` whose ``train_step`` is the seed notebook's algorithm.

Per step, as the notebook did with ``predict`` and three ``train_on_batch`` calls, but in one
compiled function:

1. draw noise and noisy labels: real ~ U[1 - label_noise, 1], fake ~ U[0, label_noise];
2. D update on the real batch;  3. D update on the fake batch (two optimizer steps, as the seed);
4. G update through D, targets = the noisy real labels, D's variables untouched.

One deliberate difference: the seed generated the fake batch twice (``predict`` for D, and again
inside the combined model for G). Here G runs forward once with a gradient tape on its weights; D
trains on that batch with the gradient stopped, then the same batch goes through the updated D for
G's loss. G's weights do not change between the two uses, so G's gradient is exact and a full
generator forward pass per step is saved.

``step_n`` runs ``train_step`` n times inside one ``tf.function`` (our ``steps_per_execution``),
stopping early on a non-finite loss. Works with ``fit`` too: ``gan.compile(...); gan.fit(ds)``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gan_core.augment import diff_augment
from gan_core.layers import FusedBatchNorm

LOSS_NAMES = ("d_loss_real", "d_loss_fake", "g_loss")
EMA_STAT_BATCHES, EMA_STAT_SEED = 8, 20_240


def _bce(target: tf.Tensor, prob: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(keras.losses.binary_crossentropy(target, prob))


class DCGAN(keras.Model):
    """Generator + discriminator (+ optional EMA generator) trained adversarially.

    Args:
        generator: noise -> image in [-1, 1].
        discriminator: image -> probability of "real".
        noise_shape: shape of one latent, e.g. (1, 1, 100).
        label_noise: width of the uniform label noise (the seed's 0.2).
        augment_ops: DiffAugment ops applied to every image D sees; () = off.
        ema_generator: a clone of ``generator`` tracking an exponential moving average, or None.
        ema_decay: EMA decay per step.
        seed: seed of the in-graph RNG (noise, labels, augmentation); its state is checkpointed.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        noise_shape: tuple[int, ...],
        label_noise: float = 0.2,
        augment_ops: tuple[str, ...] = (),
        ema_generator: keras.Model | None = None,
        ema_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(name="dcgan")
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = ema_generator
        self.noise_shape = tuple(noise_shape)
        self.label_noise = float(label_noise)
        self.augment_ops = tuple(augment_ops)
        self.ema_decay = float(ema_decay)
        self.rng = tf.random.Generator.from_seed(seed)
        self._step_n = None

    def compile(self, g_optimizer: keras.Optimizer, d_optimizer: keras.Optimizer) -> None:
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Build optimizer slots now, so a checkpoint can be restored before the first step.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def sampling_generator(self) -> keras.Model:
        """The generator to sample from: the EMA copy when there is one, else G.

        G's BatchNorm moving statistics belong to G's weights, not to their average, so the EMA
        copy's statistics are re-estimated first: the exact mean of the batch statistics of
        ``EMA_STAT_BATCHES`` training-mode passes on fixed stateless noise (repeatable, and the
        training RNG is not touched). Call it eagerly, outside compiled code.
        """
        if self.ema_generator is None:
            return self.generator
        norms = [layer for layer in self.ema_generator.layers if isinstance(layer, FusedBatchNorm)]
        momenta = [layer.momentum for layer in norms]
        for i in range(EMA_STAT_BATCHES):
            for layer in norms:  # momentum i/(i+1) makes the moving value a plain running mean
                layer.momentum = i / (i + 1)
            noise = tf.random.stateless_normal((64, *self.noise_shape), seed=(EMA_STAT_SEED, i))
            self.ema_generator(noise, training=True)
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
        return self.ema_generator

    def call(self, noise: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.generator(noise, training=training)

    def _augment(self, images: tf.Tensor) -> tf.Tensor:
        return diff_augment(images, self.augment_ops, self.rng)

    def _d_update(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            loss = _bce(labels, self.discriminator(self._augment(images), training=True))
            scaled = self.d_optimizer.scale_loss(loss)
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, d_vars), d_vars))
        return loss

    def train_step(self, data: tf.Tensor) -> dict[str, tf.Tensor]:
        real = tf.cast(data, tf.float32)
        batch = tf.shape(real)[0]
        noise = self.rng.normal(tf.concat([[batch], self.noise_shape], axis=0))
        real_labels = 1.0 - self.label_noise * self.rng.uniform([batch, 1])
        fake_labels = self.label_noise * self.rng.uniform([batch, 1])

        g_vars = self.generator.trainable_variables
        # Only G's weights are watched, so the D updates below are not recorded on this tape.
        with tf.GradientTape(watch_accessed_variables=False) as g_tape:
            g_tape.watch([v.value for v in g_vars])
            fake = self.generator(noise, training=True)
            d_loss_real = self._d_update(real, real_labels)
            d_loss_fake = self._d_update(tf.stop_gradient(fake), fake_labels)
            # G's loss through D in training mode (batch statistics, as the seed's Keras did),
            # with D's BatchNorm moving statistics put back: D stays untouched by the G update.
            d_state = [tf.identity(v) for v in self.discriminator.non_trainable_variables]
            g_loss = _bce(real_labels, self.discriminator(self._augment(fake), training=True))
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)
        for var, value in zip(self.discriminator.non_trainable_variables, d_state):
            var.assign(value)
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(scaled_g_loss, g_vars), g_vars))
        if self.ema_generator is not None:
            self._update_ema()
        return {"d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake, "g_loss": g_loss}

    def _update_ema(self) -> None:
        decay = self.ema_decay
        for ema_var, var in zip(
            self.ema_generator.trainable_variables, self.generator.trainable_variables
        ):
            ema_var.assign(decay * ema_var + (1.0 - decay) * var)

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
        sums = {name: tf.constant(0.0) for name in LOSS_NAMES}
        done = tf.constant(0)
        finite = tf.constant(True)
        for _ in tf.range(n):
            logs = self.train_step(next(iterator))
            sums = {name: sums[name] + logs[name] for name in LOSS_NAMES}
            done += 1
            finite = tf.reduce_all([tf.math.is_finite(logs[name]) for name in LOSS_NAMES])
            if not finite:
                break
        return {**sums, "steps": done, "finite": finite}
