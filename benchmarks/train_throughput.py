"""Training throughput: the seed notebook's loop vs our trainer, side by side in one process.

    python benchmarks/train_throughput.py --quick     # < 2 minutes on 2 CPU cores
    python benchmarks/train_throughput.py             # longer, steadier numbers
    python benchmarks/train_throughput.py --quick --backend jax   # both sides on JAX
    python benchmarks/train_throughput.py --packed 4              # 4 seeds packed vs in turn (JAX)

Both sides train the seed architecture at 64 px, batch 16, noise (1, 1, 100) on the same folder of
512x512 PNG covers (the seed squashed its covers to 512x512), generated from the synthetic set.

(a) the seed-style reference loop, written from the seed notebook's description: per step it reads
    16 files from disk and resizes them, calls ``generator.predict``, then three ``train_on_batch``
    (D on real, D on fake, the combined model for G) with ``trainable`` toggled, in float32 with
    stock Keras layers, as the notebook did;
(b) our trainer, ``albumgan.train`` with default precision (``auto``), measured the way it
    reports img/s (compiled executions only, the first traced step excluded).

``--backend`` (default tensorflow, the CPU path) runs both sides on that Keras backend. Prints
img/s of each, the achieved GFLOP/s against this machine's measured fp32/bf16 convolution peak,
and last ``speedup_vs_seed_loop=X.XX``. For the GPU, see ``benchmarks/gpu_check.py``.

``--packed K`` measures something else, on JAX: K seeds of one small config (the seed networks
at 32 px, width 32, batch 16, synthetic covers) trained one after another against the same K
seeds as one packed run (``gan_core.packing``), wall time of each in this process, and prints
``packed_vs_in_turn=X.XX`` (no target: on a CPU, K members cost about K times the arithmetic;
the GPU figures are gpu_check.py --packed's).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _backend_from_argv() -> str:
    """--backend, read before Keras is imported (Keras picks its backend at import)."""
    if any(arg.startswith("--packed") for arg in sys.argv):
        return "jax"  # packing is JAX's
    for i, arg in enumerate(sys.argv):
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
        if arg == "--backend" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return "tensorflow"


from albumgan.gan_core import backend  # noqa: E402

BACKEND = backend.activate(_backend_from_argv())

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from PIL import Image  # noqa: E402

from albumgan import TrainConfig, train  # noqa: E402
from albumgan.data_tools.synthetic import generate_cover  # noqa: E402
from albumgan.gan_core.precision import resolve_precision  # noqa: E402

BATCH, RESOLUTION, NOISE = 16, 64, (1, 1, 100)


def make_covers(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"cover_{i:04d}.png"
        if not path.exists():
            generate_cover(i, size=512, seed=1).save(path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------
# (a) The seed notebook's loop, rewritten from its description with stock Keras 3 layers.
# ------------------------------------------------------------------------------------------------


def seed_generator() -> keras.Model:
    L = keras.layers
    model = keras.Sequential([keras.Input(NOISE)])
    model.add(L.Conv2DTranspose(512, 4, strides=1, padding="valid"))
    model.add(L.BatchNormalization(momentum=0.5))
    model.add(L.LeakyReLU(0.2))
    for width in (256, 128, 64):
        model.add(L.Conv2DTranspose(width, 4, strides=2, padding="same"))
        model.add(L.BatchNormalization(momentum=0.5))
        model.add(L.LeakyReLU(0.2))
    model.add(L.Conv2D(64, 3, padding="same"))
    model.add(L.BatchNormalization(momentum=0.5))
    model.add(L.LeakyReLU(0.2))
    model.add(L.Conv2DTranspose(3, 4, strides=2, padding="same"))
    model.add(L.Activation("tanh"))
    return model


def seed_discriminator() -> keras.Model:
    L = keras.layers
    model = keras.Sequential([keras.Input((RESOLUTION, RESOLUTION, 3))])
    model.add(L.Conv2D(64, 4, strides=2, padding="same"))
    model.add(L.LeakyReLU(0.2))
    for width in (128, 256, 512):
        model.add(L.Conv2D(width, 4, strides=2, padding="same"))
        model.add(L.BatchNormalization(momentum=0.5))
        model.add(L.LeakyReLU(0.2))
    model.add(L.Flatten())
    model.add(L.Dense(1))
    model.add(L.Activation("sigmoid"))
    return model


class SeedLoop:
    """The notebook's step: disk reads, predict, three train_on_batch, trainable toggles."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [str(p) for p in paths]
        self.rng = np.random.default_rng(0)
        self.generator = seed_generator()
        self.discriminator = seed_discriminator()
        self.discriminator.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), "binary_crossentropy")
        self.discriminator.trainable = False
        noise = keras.Input(NOISE)
        self.gan = keras.Model(noise, self.discriminator(self.generator(noise)))
        self.gan.compile(keras.optimizers.Adam(1.5e-4, beta_1=0.5), "binary_crossentropy")

    def _real_batch(self) -> np.ndarray:
        images = []
        for path in self.rng.choice(self.paths, BATCH):
            with Image.open(path) as image:
                image = image.convert("RGB").resize((RESOLUTION, RESOLUTION))
                images.append(np.asarray(image, np.float32) / 127.5 - 1.0)
        return np.stack(images)

    def step(self) -> None:
        real = self._real_batch()
        fake = self.generator.predict(self.rng.normal(size=(BATCH, *NOISE)), verbose=0)
        real_labels = 1.0 - self.rng.random(BATCH) * 0.2
        fake_labels = self.rng.random(BATCH) * 0.2
        self.discriminator.trainable, self.generator.trainable = True, False
        self.discriminator.train_on_batch(real, real_labels)
        self.discriminator.train_on_batch(fake, fake_labels)
        self.discriminator.trainable, self.generator.trainable = False, True
        self.gan.train_on_batch(self.rng.normal(size=(BATCH, *NOISE)), real_labels)

    def measure(self, warmup: int, steps: int) -> float:
        for _ in range(warmup):
            self.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps * BATCH / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------
# (b) Our trainer.
# ------------------------------------------------------------------------------------------------


def measure_ours(folder: Path, steps: int, workdir: Path, precision: str) -> tuple[float, str]:
    cfg = TrainConfig(
        precision=precision,
        dataset=str(folder),
        resolution=RESOLUTION,
        batch_size=BATCH,
        noise_shape=NOISE,
        arch="seed",
        steps=steps + 1,
        log_every=steps + 1,
        sample_every=0,
        checkpoint_every=0,
        runs_dir=str(workdir / "runs"),
        cache_dir=str(workdir / "cache"),
        name="bench",
        backend=BACKEND,
    )
    result = train(cfg)
    record = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return float(record["img_per_s"]), resolve_precision(cfg.precision, BACKEND)


# ------------------------------------------------------------------------------------------------
# FLOPs and the machine's convolution peak.
# ------------------------------------------------------------------------------------------------


def forward_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image through the model's convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            c_in = layer.input.shape[-1]
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def conv_peak_gflops(dtype: str, seconds: float = 3.0) -> float:
    """GFLOP/s of a typical DC-GAN convolution (16x32x32x128 -> 16x16x16x256, k4 s2), compiled
    on the running backend."""
    rng = np.random.default_rng(0)
    x = ops.cast(rng.normal(size=(16, 32, 32, 128)).astype(np.float32), dtype)
    w = ops.cast(rng.normal(size=(4, 4, 128, 256)).astype(np.float32), dtype)
    if BACKEND == "jax":
        import jax

        conv = jax.jit(lambda x, w: ops.conv(x, w, strides=2, padding="same"))
    else:
        import tensorflow as tf

        conv = tf.function(lambda x, w: ops.conv(x, w, strides=2, padding="same"))
    np.asarray(conv(x, w))
    flops = 2 * 16 * 16 * 16 * 16 * 128 * 256
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = conv(x, w)
        count += 1
    np.asarray(out)
    return count * flops / (time.perf_counter() - start) / 1e9


def measure_packed(seeds: int, steps: int, workdir: Path) -> None:
    """K seeds in turn, then the same K packed: wall seconds of each, in this process."""
    from albumgan import load_data
    from albumgan.gan_core.training import train as train_on

    cfg = TrainConfig(
        resolution=32, g_width=32, d_width=32, batch_size=BATCH, steps=steps, precision="float32",
        log_every=50, sample_every=0, checkpoint_every=0, runs_dir=str(workdir / "runs"),
        cache_dir=str(workdir / "cache"), backend="jax",
    )  # fmt: skip
    data = load_data(cfg)
    train_on(cfg.replace(seed=99, steps=2), data)  # compile caches warm for both sides alike
    started = time.perf_counter()
    for seed in range(seeds):
        train_on(cfg.replace(seed=seed), data)
    in_turn = time.perf_counter() - started
    started = time.perf_counter()
    result = train_on(cfg.replace(seed=tuple(range(seeds))), data)
    packed = time.perf_counter() - started
    assert all(m.state == "completed" for m in result.members), result.members
    print(f"backend: jax on {jax_device()}; {seeds} seeds x {steps} steps, 32 px, batch {BATCH}")
    print(f"in_turn: {in_turn:8.1f} s   ({seeds * steps * BATCH / in_turn:.0f} img/s over all)")
    print(f"packed:  {packed:8.1f} s   ({seeds * steps * BATCH / packed:.0f} img/s over all)")
    print(f"packed_vs_in_turn={in_turn / packed:.2f}")


def jax_device() -> str:
    import jax

    device = jax.devices()[0]
    return str(getattr(device, "device_kind", device.platform))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packed", type=int, default=0, metavar="K", help="K seeds packed (JAX)")
    parser.add_argument("--steps", type=int, default=200, help="steps per seed for --packed")
    parser.add_argument("--quick", action="store_true", help="short run, < 2 minutes")
    parser.add_argument("--images", type=int, default=None, help="number of 512px covers")
    parser.add_argument("--precision", default="auto", help="our trainer's precision (auto)")
    parser.add_argument("--backend", default="tensorflow", help="tensorflow (default) or jax")
    args = parser.parse_args()
    if args.packed:
        with tempfile.TemporaryDirectory(prefix="albumgan-bench-") as tmp:
            measure_packed(args.packed, args.steps, Path(tmp))
        return
    ref_steps, our_steps, count = (20, 150, 64) if args.quick else (80, 600, 256)
    count = args.images or count

    with tempfile.TemporaryDirectory(prefix="albumgan-bench-") as tmp:
        workdir = Path(tmp)
        paths = make_covers(workdir / "covers", count)
        print(f"images: {len(paths)} PNG covers at 512x512, fed at {RESOLUTION}px, batch {BATCH}")

        seed = SeedLoop(paths)
        g_macs, d_macs = forward_macs(seed.generator), forward_macs(seed.discriminator)
        seed_ips = seed.measure(warmup=3, steps=ref_steps)
        del seed
        keras.backend.clear_session()
        ours_ips, precision = measure_ours(workdir / "covers", our_steps, workdir, args.precision)

    # FLOPs per real image: the seed runs G forward twice (predict + combined model); we once.
    # D real and D fake: forward + weight and input gradients (~3x); D inside the G update:
    # forward + input gradients (~2x); G backward ~2x its forward.
    seed_flops = 2 * (4 * g_macs + 8 * d_macs)
    our_flops = 2 * (3 * g_macs + 8 * d_macs)
    fp32_peak, bf16_peak = conv_peak_gflops("float32"), conv_peak_gflops("bfloat16")
    print(f"backend: {BACKEND}")
    print(f"seed_loop: {seed_ips:8.1f} img/s  (float32, {ref_steps} steps)")
    print(f"ours:      {ours_ips:8.1f} img/s  ({precision}, {our_steps} steps)")
    print(
        f"achieved: seed {seed_ips * seed_flops / 1e9:.0f} GFLOP/s, "
        f"ours {ours_ips * our_flops / 1e9:.0f} GFLOP/s; measured conv peak on this machine: "
        f"fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s"
    )
    print(f"speedup_vs_seed_loop={ours_ips / seed_ips:.2f}")


if __name__ == "__main__":
    main()
