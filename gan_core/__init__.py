"""gan_core: the DC-GAN library (models, the compiled train steps on TensorFlow and JAX,
callbacks, checkpoints, metrics). It never imports ``data_tools``: the caller hands it the images.

Notebook use (``albumgan.train`` loads ``cfg.dataset`` and calls ``gan_core.train``)::

    from albumgan import TrainConfig, train
    result = train(TrainConfig(resolution=32, steps=200, backend="jax"))

    from albumgan.gan_core import TrainingData, train  # your own images, (N, R, R, 3) uint8
    result = train(TrainConfig(resolution=32, steps=200), TrainingData("mine", images))

Importing this package loads no framework; ``train`` picks the backend from the config.
"""

from __future__ import annotations

from albumgan.gan_core.config import ConfigError, TrainConfig
from albumgan.gan_core.run import Callback, TrainingData

__all__ = ["Callback", "ConfigError", "TrainConfig", "TrainResult", "TrainingData", "train"]


def __getattr__(name: str):
    # The loop loads Keras (and a framework) only when training is asked for, so config parsing
    # and `--help` stay fast and the backend can still be chosen.
    if name in ("train", "TrainResult"):
        from albumgan.gan_core import training

        return getattr(training, name)
    raise AttributeError(f"module 'gan_core' has no attribute {name!r}")
