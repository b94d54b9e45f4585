"""gan_core: the DC-GAN library (models, the compiled train step, callbacks, checkpoints).

Notebook use::

    from gan_core import TrainConfig, train
    result = train(TrainConfig(resolution=32, steps=200))
"""

from __future__ import annotations

from gan_core.config import ConfigError, TrainConfig

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    # TensorFlow loads only when training is asked for, so config parsing and `--help` stay fast.
    if name in ("train", "TrainResult"):
        from gan_core import training

        return getattr(training, name)
    raise AttributeError(f"module 'gan_core' has no attribute {name!r}")
