"""The JAX engine: the GPU path. The whole step, and n steps of it, in one ``jax.jit``.

The training state is explicit: lists of arrays for G's and D's trainable and non-trainable
variables, both optimizers' variables and the EMA weights. One jitted function takes that
state, the dataset (held on the device as uint8) and the step number, runs up to n steps in a
``lax.while_loop`` (stopping after a non-finite loss) with Keras's ``stateless_call`` and
``stateless_apply``, and returns the new state; its buffers are donated, so XLA updates the
weights in place. Plain Keras layers throughout: XLA fuses BatchNorm, Adam and the activations
itself. (On a CPU, where XLA runs a while loop's body far slower, n steps are n jitted calls.)

Randomness is a pure function of (seed, step): every step folds its number into the run's key
(noise, labels, DiffAugment draws), and every epoch's order is a permutation keyed by
(seed, epoch), drawn inside the compiled function. A resumed run therefore replays exactly what
an uninterrupted one would, with no RNG state to checkpoint.

Sample grids and evaluation images come straight from the state through a jitted forward pass
(with the EMA generator's BatchNorm statistics re-estimated by a jitted pass too): on an H200 at
batch 16, grids drawn by eager Keras calls (and fsynced) cost more than the 100 steps between
them. The Keras variables are written from the state only when someone reads them
(``sync``: checkpoints, ``generator.keras``), as copies, since the state's buffers are donated
to the next call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from albumgan.gan_core.augment import ADA_INTERVAL, ada_adjust, diff_augment, uniforms_needed
from albumgan.gan_core.contract import LOSSES
from albumgan.gan_core.steps.engine import (
    Engine,
    batch_norms,
    d_loss,
    ema_decay_at,
    ema_statistics_noise,
    g_loss,
    learning_rate_index,
    lr_factor,
    r1_penalty,
)

_DATA_STREAM, _STEP_STREAM = 0, 1  # keys folded from the seed: data order, per-step draws


class JaxEngine(Engine):
    """Explicit state, one jitted multi-step function, the dataset on the device."""

    backend = "jax"
    fast_layers = False
    auto_steps_per_execution = 1000  # in practice: up to the next log/sample/checkpoint step

    def __init__(self, cfg, policy, images=None) -> None:
        super().__init__(cfg, policy, images)
        self._state: dict[str, list] | None = None
        self._synced = True
        self._functions: dict | None = None
        self._samplers: dict | None = None
        self._device_images = None
        self._params = self.params()
        # On a CPU, n steps are n jitted calls (see _run_stepwise); elsewhere one while_loop.
        self._stepwise = jax.devices()[0].platform == "cpu"
        # A member of a packed run (steps/packed.py): the pack holds the state, stacked.
        self._pack = None
        self._index = 0
        self._synced_version = -1

    def _variables(self) -> dict[str, list]:
        """The Keras variables behind each part of the state, in the state's order."""
        parts = {
            "g_tv": self.generator.trainable_variables,
            "g_ntv": self.generator.non_trainable_variables,
            "d_tv": self.discriminator.trainable_variables,
            "d_ntv": self.discriminator.non_trainable_variables,
            "g_opt": self.g_optimizer.variables,
            "d_opt": self.d_optimizer.variables,
        }
        if self.ema_generator is not None:
            parts["ema_tv"] = self.ema_generator.trainable_variables
        if self.ada_state:
            parts["ada"] = self.ada_state  # [p, sum of sign(D(real)) since p last moved]
        return parts

    def start(self, step: int) -> None:
        super().start(step)
        self._state = {
            key: [jnp.array(var.value, copy=True) for var in variables]
            for key, variables in self._variables().items()
        }
        self._synced = True
        if self._device_images is None and self.images is not None:
            self._device_images = jax.device_put(self.images)

    def attach(self, pack, index: int) -> None:
        """Become member ``index`` of ``pack``, which now holds this run's state (stacked)."""
        self._pack, self._index = pack, index
        self._state, self._synced_version = None, -1

    def _current_state(self) -> dict[str, list] | None:
        if self._pack is not None:
            return self._pack.member_state(self._index)
        return self._state

    def sync(self) -> None:
        if self._pack is not None:
            if self._synced_version == self._pack.version:
                return
            self._synced_version = self._pack.version
            state = self._pack.member_state(self._index)
        elif self._synced or self._state is None:
            return
        else:
            state = self._state
        for key, variables in self._variables().items():
            for var, value in zip(variables, state[key]):
                var.assign(jnp.array(value, copy=True))
        self._synced = True

    def _compiled(self) -> dict:
        if self._functions is None:
            train_1, train_n, step_on = self._make_functions()
            self._functions = {
                "train_1": jax.jit(train_1, donate_argnums=0),
                "train_n": jax.jit(train_n, donate_argnums=0),
                "step_on": jax.jit(step_on, donate_argnums=0),
            }
        return self._functions

    def run(self, n: int) -> dict[str, float]:
        if self._stepwise:
            return self._run_stepwise(n)
        self._state, sums, done, finite = self._compiled()["train_n"](
            self._state, self._device_images, jnp.int32(self.step), jnp.int32(n), self._params
        )
        self._synced = False
        sums, done, finite = jax.device_get((sums, done, finite))
        self.step += int(done)
        return self._with_augment_p(
            {
                **{name: float(value) for name, value in zip(LOSSES, sums)},
                "steps": int(done),
                "finite": bool(finite),
            }
        )

    def _with_augment_p(self, out: dict) -> dict:
        if "ada" in self._state:
            out["augment_p"] = float(jax.device_get(self._state["ada"][0]))
        return out

    def _run_stepwise(self, n: int) -> dict[str, float]:
        """``run`` on a CPU: one jitted step per call. XLA's CPU backend runs the convolutions of
        a ``while_loop`` body about 8x slower than the same step jitted alone (17 s against
        2.2 s per step for the seed networks at 64 px, 2 cores), and a dispatch costs nothing
        there next to a step."""
        train_1 = self._compiled()["train_1"]
        sums, done, finite = np.zeros(3), 0, True
        while done < n and finite:
            self._state, losses = train_1(
                self._state, self._device_images, jnp.int32(self.step), self._params
            )
            losses = np.asarray(jax.device_get(losses), np.float64)
            sums, done, finite = sums + losses, done + 1, bool(np.isfinite(losses).all())
            self.step += 1
        self._synced = False
        return self._with_augment_p(
            {
                **{name: float(value) for name, value in zip(LOSSES, sums)},
                "steps": done,
                "finite": finite,
            }
        )

    def step_on(self, inputs: dict) -> dict[str, float]:
        inputs = {k: (tuple(v) if k == "augment" else v) for k, v in inputs.items()}
        inputs.setdefault("augment", (None, None, None))
        self._state, losses = self._compiled()["step_on"](
            self._state, **inputs, step=jnp.int32(self.step)
        )
        self._synced = False
        self.step += 1
        return {name: float(value) for name, value in zip(LOSSES, jax.device_get(losses))}

    def sample(self, noise: np.ndarray, batch: int = 64) -> np.ndarray:
        if self._pack is not None:  # the pack may have drawn it already, with all members'
            cached = self._pack.cached_sample(self._index, noise)
            if cached is not None:
                return cached
        state = self._current_state()
        if state is None:  # not training: the Keras models hold the weights
            return super().sample(noise, batch)
        forward = self._sampling_functions()["forward"]
        if self.ema_generator is None:
            weights, statistics = state["g_tv"], state["g_ntv"]
        else:
            weights, statistics = state["ema_tv"], self._ema_statistics(state)
        parts = [
            np.asarray(forward(weights, statistics, noise[i : i + batch]), np.float32)
            for i in range(0, len(noise), batch)
        ]
        return np.concatenate(parts)

    def _sampling_functions(self) -> dict:
        if self._pack is not None and self._pack.lead is not self:
            return self._pack.lead._sampling_functions()  # one compiled copy for all members
        if self._samplers is None:
            model = self.ema_generator or self.generator  # the same network either way

            def forward(weights, statistics, noise):
                return model.stateless_call(weights, statistics, noise, training=False)[0]

            def batch_statistics(weights, statistics, noise):
                return model.stateless_call(weights, statistics, noise, training=True)[1]

            self._samplers = {
                "forward": jax.jit(forward),
                "statistics": jax.jit(batch_statistics),
                "noise": [jax.device_put(x) for x in ema_statistics_noise(self.cfg.noise_shape)],
            }
        return self._samplers

    def _ema_statistics(self, state: dict[str, list]) -> list:
        """``Engine.sampling_generator``'s re-estimation, jitted: the mean of the batch statistics
        of the training-mode passes on the same fixed noise."""
        functions = self._sampling_functions()
        # The model the functions were traced with (a pack's lead for its members).
        model = (self._pack.lead if self._pack is not None else self).ema_generator
        start = [var.value for var in model.non_trainable_variables]
        with batch_norms(model) as norms:
            for layer in norms:  # read when the function is traced: it returns batch statistics
                layer.momentum = 0.0
            passes = [
                functions["statistics"](state["ema_tv"], start, noise)
                for noise in functions["noise"]
            ]
        return [sum(values) / len(values) for values in zip(*passes)]

    def params(self, traced: tuple[str, ...] = ()) -> dict:
        """The per-run inputs of the step functions: the run's two random keys (as key data) and
        the scalar keys named in ``traced`` (``TRACED_KEYS``), which a packed run varies across
        its members; every other key is a constant of the compiled program."""
        seed_key = jax.random.key(self.cfg.seed)
        out = {
            "data_key": jax.random.key_data(jax.random.fold_in(seed_key, _DATA_STREAM)),
            "step_key": jax.random.key_data(jax.random.fold_in(seed_key, _STEP_STREAM)),
        }
        out.update({key: np.float32(getattr(self.cfg, key)) for key in traced})
        return out

    def _make_functions(self, traced: tuple[str, ...] = ()):
        """The functions to jit: ``train_1(state, images, step, params) -> (state, losses)``,
        ``train_n(state, images, step, n, params) -> (state, loss sums, steps, finite)`` (n steps
        of it in a ``lax.while_loop``: the GPU path) and ``step_on(state, real, noise, ...)``.

        ``params`` (``self.params(traced)``) holds what a packed run gives each member: its keys
        and the scalar keys in ``traced``. The learning rates are variables of the optimizer
        state; a schedule rewrites them every step from the member's base rates."""
        cfg = self.cfg
        G, D = self.generator, self.discriminator
        g_opt, d_opt = self.g_optimizer, self.d_optimizer
        g_lr_index, d_lr_index = learning_rate_index(g_opt), learning_rate_index(d_opt)
        batch, noise_shape = cfg.batch_size, cfg.noise_shape
        augment_ops = cfg.diffaugment_ops
        n_images = len(self.images) if self.images is not None else 1
        epochs_per_batch = batch // n_images + 2  # a batch spans at most this many epochs

        def scalar(params, key):
            """A scalar key: the member's traced value in a pack, else the config's constant
            (a Python float, as before packing: the same arithmetic, bit for bit)."""
            return params[key] if key in traced else getattr(cfg, key)

        def batch_of(images, step, data_key):
            """Batch number ``step``: positions step*B .. step*B+B-1 of the epoch sequence."""
            data_key = jax.random.wrap_key_data(data_key)
            first = step * batch
            positions = first + jnp.arange(batch)
            first_epoch = first // n_images
            epochs = first_epoch + jnp.arange(epochs_per_batch)
            orders = jax.vmap(
                lambda e: jax.random.permutation(jax.random.fold_in(data_key, e), n_images)
            )(epochs)
            index = orders[positions // n_images - first_epoch, positions % n_images]
            return images[index].astype(jnp.float32) / 127.5 - 1.0

        def draw_inputs(step, params):
            """One step's random inputs, a function of (seed, step) (see ``Engine.step_on``)."""
            step_key = jax.random.wrap_key_data(params["step_key"])
            keys = jax.random.split(jax.random.fold_in(step_key, step), 6)
            label_noise = scalar(params, "label_noise")
            inputs = {
                "noise": jax.random.normal(keys[0], (batch, *noise_shape)),
                "real_labels": 1.0 - label_noise * jax.random.uniform(keys[1], (batch, 1)),
                "fake_labels": label_noise * jax.random.uniform(keys[2], (batch, 1)),
                "augment": (None, None, None),
            }
            if augment_ops:  # D's real pass, D's fake pass, G's pass
                width = uniforms_needed(augment_ops, gated=cfg.ada)
                inputs["augment"] = tuple(jax.random.uniform(k, (batch, width)) for k in keys[3:])
            return inputs

        def augmented(images, uniforms, p):
            return images if uniforms is None else diff_augment(images, augment_ops, uniforms, p)

        def d_forward(d_tv, d_ntv, images):
            return D.stateless_call(d_tv, d_ntv, images, training=True)

        def d_value_and_grad(d_tv, d_ntv, images, labels, real, r1_scale=None):
            """D's loss on one batch (images as D sees them, augmented) and its gradient, with
            R1 added when ``r1_scale`` is given: the gradient of D's logits with respect to those
            images, itself differentiated here (a gradient of a gradient)."""

            def objective(d_tv):
                if r1_scale is None:
                    logit, ntv = d_forward(d_tv, d_ntv, images)
                    return d_loss(cfg.loss, logit, labels, real), (ntv, logit)
                logit, image_vjp, ntv = jax.vjp(
                    lambda x: d_forward(d_tv, d_ntv, x), images, has_aux=True
                )
                (image_grad,) = image_vjp(jnp.ones_like(logit))
                penalty = r1_scale * r1_penalty(image_grad)
                return d_loss(cfg.loss, logit, labels, real) + penalty, (ntv, logit)

            return jax.value_and_grad(objective, has_aux=True)(d_tv)

        def d_update_real(d_tv, d_ntv, images, labels, step, params):
            """D's loss and gradient on the real batch; R1 on every ``r1_every``-th step, with
            weight gamma / 2 x the interval (``r1_weight``)."""
            if not cfg.r1:
                return d_value_and_grad(d_tv, d_ntv, images, labels, True)
            scale = scalar(params, "r1_gamma") / 2 * cfg.r1_every
            return jax.lax.cond(
                step % cfg.r1_every == 0,
                lambda: d_value_and_grad(d_tv, d_ntv, images, labels, True, scale),
                lambda: d_value_and_grad(d_tv, d_ntv, images, labels, True),
            )

        def apply(optimizer, params, opt_vars, grads, weights):
            """``optimizer.stateless_apply`` with the member's betas where they are traced
            (Adam reads them as attributes while the step is traced)."""
            betas = {f"beta_{i}": params[f"beta{i}"] for i in (1, 2) if f"beta{i}" in traced}
            saved = {name: getattr(optimizer, name) for name in betas}
            try:
                for name, value in betas.items():
                    setattr(optimizer, name, value)
                return optimizer.stateless_apply(opt_vars, grads, weights)
            finally:
                for name, value in saved.items():
                    setattr(optimizer, name, value)

        def scheduled(opt_vars, index, base, factor):
            """The optimizer state with this step's learning rate (``lr_schedule``)."""
            if factor is None:
                return opt_vars
            opt_vars = list(opt_vars)
            opt_vars[index] = (base * factor).astype(opt_vars[index].dtype)
            return opt_vars

        def step_on(state, real, noise, real_labels, fake_labels, augment, step, params=None):
            params = params or {}
            factor = lr_factor(cfg, step)
            p = state["ada"][0] if "ada" in state else None

            # G forward once; its backward pass waits for the gradient from the updated D.
            def g_forward(g_tv):
                return G.stateless_call(g_tv, state["g_ntv"], noise, training=True)

            fake, g_backward, g_ntv = jax.vjp(g_forward, state["g_tv"], has_aux=True)

            d_tv, d_ntv = state["d_tv"], state["d_ntv"]
            d_opt_vars = scheduled(state["d_opt"], d_lr_index, scalar(params, "lr_d"), factor)
            real_seen = augmented(real, augment[0], p)
            (loss_real, (d_ntv, real_logit)), grads = d_update_real(
                d_tv, d_ntv, real_seen, real_labels, step, params
            )
            if cfg.r1:  # the reported loss is D's own, without the penalty
                loss_real = d_loss(cfg.loss, real_logit, real_labels, True)
            d_tv, d_opt_vars = apply(d_opt, params, d_opt_vars, grads, d_tv)
            fake_seen = augmented(jax.lax.stop_gradient(fake), augment[1], p)
            (loss_fake, (d_ntv, _)), grads = d_value_and_grad(
                d_tv, d_ntv, fake_seen, fake_labels, False
            )
            d_tv, d_opt_vars = apply(d_opt, params, d_opt_vars, grads, d_tv)

            def g_loss_of(fake):  # D's statistics from this pass are dropped: D stays as it is
                logit, _ = d_forward(d_tv, d_ntv, augmented(fake, augment[2], p))
                return g_loss(cfg.loss, logit, real_labels)

            loss_g, d_fake = jax.value_and_grad(g_loss_of)(fake)
            (g_grads,) = g_backward(d_fake)
            g_opt_vars = scheduled(state["g_opt"], g_lr_index, scalar(params, "lr_g"), factor)
            g_tv, g_opt_vars = apply(g_opt, params, g_opt_vars, g_grads, state["g_tv"])
            new = {
                "g_tv": g_tv,
                "g_ntv": g_ntv,
                "d_tv": d_tv,
                "d_ntv": d_ntv,
                "g_opt": g_opt_vars,
                "d_opt": d_opt_vars,
            }
            if "ema_tv" in state:
                decay = ema_decay_at(
                    scalar(params, "ema"), scalar(params, "ema_rampup"), step, batch
                )
                new["ema_tv"] = [
                    decay * ema + (1.0 - decay) * w for ema, w in zip(state["ema_tv"], g_tv)
                ]
            if p is not None:
                new["ada"] = ada_step(state["ada"], real_logit, step, params)
            return new, jnp.stack([loss_real, loss_fake, loss_g]).astype(jnp.float32)

        def ada_step(ada, real_logit, step, params):
            """Add this batch's signs of D's real logits; every ADA_INTERVAL steps, move p."""
            p, sign_sum = ada
            sign_sum = sign_sum + jnp.sum(jnp.sign(real_logit))
            adjust = (step + 1) % ADA_INTERVAL == 0
            moved = ada_adjust(
                p, sign_sum, ADA_INTERVAL * batch, scalar(params, "ada_target"),
                scalar(params, "ada_speed"),
            )  # fmt: skip
            return [jnp.where(adjust, moved, p), jnp.where(adjust, 0.0, sign_sum)]

        def train_1(state, images, step, params):
            inputs = draw_inputs(step, params)
            return step_on(
                state,
                batch_of(images, step, params["data_key"]),
                inputs["noise"],
                inputs["real_labels"],
                inputs["fake_labels"],
                inputs["augment"],
                step,
                params,
            )

        def train_n(state, images, step, n, params):
            def more(carry):
                _, done, _, finite = carry
                return (done < n) & finite

            def body(carry):
                state, done, sums, _ = carry
                state, losses = train_1(state, images, step + done, params)
                return state, done + 1, sums + losses, jnp.all(jnp.isfinite(losses))

            start = (state, jnp.int32(0), jnp.zeros(3, jnp.float32), jnp.bool_(True))
            state, done, sums, finite = jax.lax.while_loop(more, body, start)
            return state, sums, done, finite

        return train_1, train_n, step_on
