"""Run jobs on one Keras backend in a fresh process, for tests that compare backends.

    KERAS_BACKEND=jax python tests/backend_worker.py JOBS.json

A process runs one backend for its lifetime, so a test on TensorFlow asks this script to do the
same work on JAX (or the reverse) and compares the files it writes. Each job is an object with a
``kind``:

    augment  {images, uniforms_<op>..., out}: DiffAugment of each op alone and of all of them
    step     {config, checkpoint, inputs, out_checkpoint, out_losses}: restore, one pinned step
    sample   {generator, noise, out}: load a generator.keras, sample the noise
    export   {config, checkpoint, generator, noise, out}: restore, export generator.keras, sample
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from albumgan.gan_core import backend  # noqa: E402
from albumgan.gan_core.config import TrainConfig  # noqa: E402


def _augment(job: dict) -> None:
    from albumgan.gan_core.augment import OPS, diff_augment

    with np.load(job["images"]) as data:
        images = data["images"]
        uniforms = {name: data[f"uniforms_{name}"] for name in OPS}
    out = {}
    for name in OPS:
        out[name] = np.asarray(diff_augment(images, (name,), uniforms[name]))
    every = tuple(OPS)
    out["all"] = np.asarray(
        diff_augment(images, every, np.concatenate([uniforms[n] for n in every], axis=1))
    )
    np.savez(job["out"], **out)


def _engine(job: dict):
    from albumgan.gan_core import checkpoint
    from albumgan.gan_core.steps import make_engine

    cfg = TrainConfig(**job["config"])
    images = np.zeros((4, cfg.resolution, cfg.resolution, 3), np.uint8)  # never drawn from
    engine = make_engine(cfg, "float32", images)
    step = checkpoint.restore_file(engine, Path(job["checkpoint"]))
    engine.start(step)
    return engine


def _step(job: dict) -> None:
    from albumgan.gan_core import checkpoint

    engine = _engine(job)
    with np.load(job["inputs"]) as data:
        inputs = {k: data[k] for k in data.files if not k.startswith("augment")}
        augment = [data[f"augment{i}"] for i in range(3) if f"augment{i}" in data.files]
    if augment:
        inputs["augment"] = tuple(augment)
    losses = engine.step_on(inputs)
    checkpoint.write_checkpoint(engine, Path(job["out_checkpoint"]), engine.step)
    Path(job["out_losses"]).write_text(json.dumps(losses))


def _sample(job: dict) -> None:
    from albumgan.gan_core.sampling import load_sampler

    run_dir = Path(job["generator"]).parent
    generator = load_sampler(run_dir)
    noise = np.load(job["noise"])
    np.save(job["out"], np.asarray(generator(noise, training=False)))


def _export(job: dict) -> None:
    engine = _engine(job)
    engine.export_generator(Path(job["generator"]))
    np.save(job["out"], engine.sample(np.load(job["noise"])))


JOBS = {"augment": _augment, "step": _step, "sample": _sample, "export": _export}


def main(path: str) -> int:
    name = backend.activate(os.environ.get("KERAS_BACKEND", "auto"))
    for job in json.loads(Path(path).read_text()):
        JOBS[job["kind"]](job)
    print(json.dumps({"backend": name}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
