"""The engines that train: one per backend, behind ``steps.engine.Engine``.

    engine = make_engine(cfg, policy, images)   # for the backend Keras runs on
    step = checkpoint.restore_latest(engine, ckpt_dir); engine.start(step)
    losses = engine.run(n)

Only this package knows which framework runs; import it after ``gan_core.backend.activate``.
"""

from __future__ import annotations

import numpy as np

from albumgan.gan_core.config import TrainConfig


def make_engine(cfg: TrainConfig, policy: str, images: np.ndarray | None = None):
    """The engine for the running Keras backend (``keras.backend.backend()``)."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        from albumgan.gan_core.steps.jax import JaxEngine

        return JaxEngine(cfg, policy, images)
    if name == "tensorflow":
        from albumgan.gan_core.steps.tensorflow import TensorFlowEngine

        return TensorFlowEngine(cfg, policy, images)
    raise RuntimeError(f"Keras runs on {name!r}; albumgan trains on jax or tensorflow")


def device_name() -> str:
    """The device the running backend computes on, e.g. ``NVIDIA H200`` or ``cpu``."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return str(getattr(device, "device_kind", device.platform))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu"))
    return "cpu"
