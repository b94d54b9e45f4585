"""Packed training on JAX: K runs of one shape trained as ONE compiled program.

A DC-GAN step at batch 16 leaves a GPU nearly idle: it is bound by kernel launches, not by
arithmetic. ``PackedJaxEngine`` stacks the explicit states of K ``JaxEngine`` members along a new
leading axis and ``jax.vmap``s their step over it, so K small runs become one large one. Each
member keeps everything that makes it itself:

- its random stream: the member's data and step keys are inputs of the vmapped step, so data
  order, noise, labels and DiffAugment draws stay the functions of (seed, step) a single run
  draws, and member S follows the trajectory of a single run with seed S (to float tolerance:
  XLA may order a batched convolution's sums differently);
- its scalar keys: learning rates are variables of the optimizer state (stacked like weights);
  those keys (``TRACED_KEYS``: the betas, label noise, the EMA decay and ramp-up, R1's gamma,
  ADA's target and speed, and the base learning rates a schedule decays) become traced inputs
  when the members' values differ, and stay constants of the program when they agree, so a pack
  of seeds computes exactly what single runs compute;
- its Keras models: checkpoints, ``generator.keras`` and sampling read the member's slice of the
  stacked state through the member engine (``JaxEngine.attach``), so every callback works on a
  member as on a single run.

A member whose losses turn non-finite is frozen (masked: its state stops changing) and the others
go on. The dataset is put on the device once. Sample grids and evaluation images of all members
come from one vmapped forward pass (``prefetch``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from albumgan.gan_core.contract import LOSSES
from albumgan.gan_core.packing import TRACED_KEYS
from albumgan.gan_core.steps.engine import batch_norms


def _where(keep, new, old):
    """``new`` for the members in ``keep``, ``old`` for the others (a leading member axis)."""
    return jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


class PackedJaxEngine:
    """The stacked state of K ``JaxEngine`` members of one shape, and their vmapped step.

    Args:
        engines: the members, built and restored (checkpoints loaded); all at ``step``.
        step: the step every member trains from.
    """

    backend = "jax"

    def __init__(self, engines: list, step: int) -> None:
        self.members = engines
        self.lead = engines[0]  # its models trace the functions: all members share the shapes
        self.traced = tuple(
            key for key in TRACED_KEYS if len({getattr(e.cfg, key) for e in engines}) > 1
        )
        device_images = jax.device_put(self.lead.images)  # on the device once, for all
        for engine in engines:
            engine._device_images = device_images
            engine.start(step)
        self.images = device_images
        self.state = {
            key: [jnp.stack(values) for values in zip(*(e._state[key] for e in engines))]
            for key in self.lead._state
        }
        self.params = jax.tree.map(
            lambda *values: jnp.stack(values), *(e.params(self.traced) for e in engines)
        )
        self.alive = jnp.ones(len(engines), bool)
        self.step = step
        self.version = 0  # bumped by every execution: members' cached slices are stale then
        self._slices: dict[int, tuple[int, dict]] = {}
        self._samples: dict[tuple[int, int], tuple[int, np.ndarray, np.ndarray]] = {}
        self._functions: dict | None = None
        self._samplers: dict | None = None
        self._stepwise = self.lead._stepwise
        for index, engine in enumerate(engines):
            engine.attach(self, index)

    # --- training --------------------------------------------------------------------------------

    def _compiled(self) -> dict:
        if self._functions is None:
            train_1, _, _ = self.lead._make_functions(self.traced)
            members_1 = jax.vmap(train_1, in_axes=(0, None, None, 0))

            def packed_1(state, images, step, params, alive):
                new, losses = members_1(state, images, step, params)
                advanced = alive & jnp.all(jnp.isfinite(losses), axis=1)
                # A member that was frozen stays as it was; one that just diverged keeps its last
                # finite state (nothing is saved from it, as a single run saves nothing).
                state = jax.tree.map(lambda n, o: _where(advanced, n, o), new, state)
                return state, losses, advanced

            def packed_n(state, images, step, n, params, alive):
                def more(carry):
                    return (carry[1] < n) & jnp.any(carry[4])

                def body(carry):
                    state, done, sums, counts, alive = carry
                    state, losses, advanced = packed_1(state, images, step + done, params, alive)
                    sums = sums + jnp.where(alive[:, None], losses, 0.0)
                    return state, done + 1, sums, counts + alive, advanced

                k = alive.shape[0]
                start = (state, jnp.int32(0), jnp.zeros((k, 3), jnp.float32),
                         jnp.zeros(k, jnp.int32), alive)  # fmt: skip
                state, _, sums, counts, alive = jax.lax.while_loop(more, body, start)
                return state, sums, counts, alive

            self._functions = {
                "train_1": jax.jit(packed_1, donate_argnums=0),
                "train_n": jax.jit(packed_n, donate_argnums=0),
            }
        return self._functions

    def run(self, n: int) -> list[dict]:
        """Up to ``n`` steps of every live member in one compiled call (one jitted step per call
        on a CPU, as ``JaxEngine``); a member stops after a non-finite loss.

        Returns:
            Per member, what ``Engine.run`` returns: loss sums, ``steps``, ``finite``
            (``steps`` 0 for a member frozen before this call) and with ADA ``augment_p``.
        """
        functions = self._compiled()
        was_alive = np.asarray(jax.device_get(self.alive))
        if self._stepwise:
            sums = np.zeros((len(self.members), 3))
            counts = np.zeros(len(self.members), np.int64)
            alive, done = self.alive, 0
            while done < n and bool(np.any(alive_host := np.asarray(jax.device_get(alive)))):
                self.state, losses, alive = functions["train_1"](
                    self.state, self.images, jnp.int32(self.step + done), self.params, alive
                )
                losses = np.asarray(jax.device_get(losses), np.float64)
                sums += np.where(alive_host[:, None], losses, 0.0)
                counts += alive_host
                done += 1
        else:
            self.state, sums, counts, alive = functions["train_n"](
                self.state, self.images, jnp.int32(self.step), jnp.int32(n), self.params,
                self.alive,
            )  # fmt: skip
            sums, counts = jax.device_get((sums, counts))
        self.alive = alive
        alive = np.asarray(jax.device_get(alive))
        self.version += 1
        self.step += int(np.max(counts, initial=0))
        augment_p = None
        if "ada" in self.state:  # each member's adaptive-augmentation p
            augment_p = np.asarray(jax.device_get(self.state["ada"][0]))
        outs = []
        for i, engine in enumerate(self.members):
            engine.step += int(counts[i])
            outs.append(
                {
                    **{name: float(value) for name, value in zip(LOSSES, sums[i])},
                    "steps": int(counts[i]),
                    "finite": bool(alive[i]) or not was_alive[i],
                }
            )
            if augment_p is not None:
                outs[-1]["augment_p"] = float(augment_p[i])
        return outs

    def freeze(self, index: int) -> None:
        """Stop training member ``index`` (pruned, say); the others go on."""
        self.alive = self.alive.at[index].set(False)

    # --- a member's view -------------------------------------------------------------------------

    def member_state(self, index: int) -> dict[str, list]:
        """Member ``index``'s slice of the stacked state (copies, cached until the next run)."""
        cached = self._slices.get(index)
        if cached is None or cached[0] != self.version:
            cached = (self.version, jax.tree.map(lambda x: x[index], self.state))
            self._slices[index] = cached
        return cached[1]

    def prefetch(self, requests: list[tuple[int, np.ndarray]]) -> None:
        """Sample ``noise`` for every (member, noise) request in one vmapped forward pass per
        latent shape; ``cached_sample`` hands the images out when the member asks for them."""
        self._samples = {}
        by_shape: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        for index, noise in requests:
            by_shape.setdefault(np.shape(noise), []).append((index, noise))
        for items in by_shape.values():
            members = jnp.asarray([index for index, _ in items])
            images = self._sample_members(members, np.stack([noise for _, noise in items]))
            for (index, noise), out in zip(items, images):
                self._samples[(index, id(noise))] = (self.version, noise, out)

    def cached_sample(self, index: int, noise: np.ndarray) -> np.ndarray | None:
        entry = self._samples.get((index, id(noise)))
        if entry is None or entry[0] != self.version or entry[1] is not noise:
            return None
        return entry[2]

    def _sample_members(self, members, noise: np.ndarray, batch: int = 64) -> np.ndarray:
        functions = self._sampling_functions()
        if self.lead.ema_generator is None:
            weights = [x[members] for x in self.state["g_tv"]]
            statistics = [x[members] for x in self.state["g_ntv"]]
        else:
            weights = [x[members] for x in self.state["ema_tv"]]
            start = [var.value for var in self.lead.ema_generator.non_trainable_variables]
            with batch_norms(self.lead.ema_generator) as norms:
                for layer in norms:  # as JaxEngine._ema_statistics: momentum 0 while traced
                    layer.momentum = 0.0
                passes = [functions["statistics"](weights, start, z) for z in functions["noise"]]
            statistics = [sum(values) / len(values) for values in zip(*passes)]
        parts = [
            np.asarray(functions["forward"](weights, statistics, noise[:, i : i + batch]))
            for i in range(0, noise.shape[1], batch)
        ]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _sampling_functions(self) -> dict:
        if self._samplers is None:
            single = self.lead._sampling_functions()
            self._samplers = {
                "forward": jax.jit(jax.vmap(single["forward"])),
                "statistics": jax.jit(jax.vmap(single["statistics"], in_axes=(0, None, None))),
                "noise": single["noise"],
            }
        return self._samplers
