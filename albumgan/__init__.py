"""albumgan: the notebook face of the project, on top of gan_core and data_tools.

    from albumgan import TrainConfig, train
    result = train(TrainConfig(dataset="synthetic", resolution=32, steps=200))
    print(result.run_dir, result.state, result.backend, result.metrics)

``train`` loads ``cfg.dataset`` (``data_tools``) and hands the images to ``gan_core.train``, the
same function the command line (``albumgan train``, ``python -m albumgan.experiments.train``)
and sweeps use. Importing this package loads no framework.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# The subpackages (albumgan.gan_core, albumgan.sweeps, ...) are the repository's top-level folders.
# An install maps them into this package (pyproject's package-dir); a source checkout that is not
# installed (a GPU machine that got a copy of the tree, a benchmark run from a clone) finds them
# beside this folder.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "gan_core").is_dir() and (_CHECKOUT / "gan_core").is_dir():
    __path__.append(str(_CHECKOUT))

from albumgan.gan_core.config import ConfigError, TrainConfig  # noqa: E402  (needs __path__)
from albumgan.gan_core.run import Callback, TrainingData  # noqa: E402

__all__ = ["Callback", "ConfigError", "TrainConfig", "TrainingData", "load_data", "train"]


def load_data(cfg: TrainConfig) -> TrainingData:
    """``cfg.dataset`` decoded at ``cfg.resolution`` (cached), as ``gan_core.train`` takes it.

    Raises:
        DatasetError: unknown name, missing folder, or no decodable image in it.
    """
    from albumgan.data_tools.datasets import load_dataset
    from albumgan.gan_core.fileio import default_cache_dir

    dataset = load_dataset(
        cfg.dataset, cfg.resolution, cfg.cache_dir or default_cache_dir(), cfg.data_dir or None
    )
    return TrainingData(dataset.name, dataset.images, dataset.fingerprint)


def train(
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
):
    """Load ``cfg.dataset`` and train one run; see ``gan_core.training.train`` for the rest.

    The dataset loads before any folder is made: a bad dataset leaves nothing behind.
    """
    from albumgan.gan_core.training import train as train_on

    return train_on(cfg, load_data(cfg), callbacks, run_dir, resume)
