"""The engine's contract on the session's backend (``make test`` runs this on TensorFlow and JAX):
sampling during training equals the Keras models' own output, EMA statistics re-estimated.

On an NVIDIA GPU, XLA runs float32 convolutions in TF32 by default (10-bit mantissa inputs), and
the jitted and eager paths may pick different algorithms: there they agree to ~1e-3, not 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.steps import make_engine
from albumgan.gan_core.steps.engine import Engine

pytestmark = pytest.mark.backend_contract


def _on_gpu() -> bool:
    from albumgan.gan_core.steps import device_name

    return device_name() != "cpu"


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_samples_while_training_equal_the_keras_models_output(ema, backend_name):
    cfg = TrainConfig(
        resolution=16, g_width=8, d_width=8, noise_shape=(1, 1, 16), batch_size=4, ema=ema,
        precision="float32",
    )  # fmt: skip
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    engine = make_engine(cfg, "float32", images)
    assert engine.backend == backend_name
    engine.start(0)
    engine.run(3)
    noise = np.random.default_rng(1).standard_normal((70, 1, 1, 16)).astype(np.float32)
    fast = engine.sample(noise)  # what grids and evaluations use (jitted on JAX)
    keras_way = Engine.sample(engine, noise)  # the Keras model after sync, eager
    assert fast.shape == (70, 16, 16, 3) and np.isfinite(fast).all()
    np.testing.assert_allclose(fast, keras_way, atol=2e-3 if _on_gpu() else 1e-5)
    np.testing.assert_array_equal(fast, engine.sample(noise))  # repeatable
    engine.run(2)
    assert not np.allclose(engine.sample(noise), fast)  # and it follows the training


@pytest.mark.parametrize(
    ("logit_bias", "p_start", "p_after"), [(100.0, 0.0, 0.2), (-100.0, 0.5, 0.3)]
)
def test_ada_raises_p_when_d_is_over_confident_on_reals_and_lowers_it_otherwise(
    logit_bias, p_start, p_after
):
    """A stand-in D whose logit bias says "real" to everything (r_t = 1 > target 0.6), or
    "fake" (r_t = -1): after 8 steps p has moved twice (every ADA_INTERVAL = 4 steps) by
    4 steps x batch 4 / ada_speed 160 = 0.1 each, up or down."""
    cfg = TrainConfig(
        resolution=16, g_width=8, d_width=8, noise_shape=(1, 1, 16), batch_size=4,
        precision="float32", augment_p="ada", ada_speed=160, steps=8,
    )  # fmt: skip
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    engine = make_engine(cfg, "float32", images)
    bias = engine.discriminator.get_layer("logit").bias
    bias.assign(np.full(bias.shape, logit_bias, np.float32))
    engine.ada_state[0].assign(p_start)
    engine.start(0)
    out = engine.run(3)
    assert out["augment_p"] == pytest.approx(p_start)  # not yet: every 4 steps
    out = engine.run(5)
    assert out["steps"] == 5 and out["augment_p"] == pytest.approx(p_after, abs=1e-6)
    assert engine.augment_p() == pytest.approx(p_after, abs=1e-6)  # the state the checkpoint saves
