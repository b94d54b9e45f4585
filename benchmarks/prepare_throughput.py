"""Dataset preparation throughput: ``albumgan data prepare`` on 500 messy raw images.

    python benchmarks/prepare_throughput.py [--n 500] [--workers 2]

Generates raw covers like a crawl brings back (sides 300-1500 px, JPEG/PNG/GIF/WebP, RGB, RGBA,
palette, greyscale and CMYK, some non-square, some duplicates at other sizes), then prepares them
to 512x512 and prints images/s and wall seconds. Target: <= 30 s for 500 images on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from albumgan.data_tools.prepare import prepare  # noqa: E402
from albumgan.data_tools.synthetic import generate_cover  # noqa: E402


def make_raw(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        source = i if rng.random() > 0.1 else max(0, i - 1)  # ~10% re-uploads of a neighbour
        base = generate_cover(source, size=384, seed=seed)
        side = int(rng.integers(300, 1501))
        width = side if rng.random() > 0.2 else int(side * rng.uniform(0.8, 1.25))
        image = base.resize((width, side), Image.Resampling.BICUBIC)
        kind = rng.choice(["jpg", "jpg", "jpg", "png", "rgba", "palette", "grey", "cmyk", "webp"])
        stem = folder / f"raw_{i:04d}"
        if kind == "jpg":
            image.save(f"{stem}.jpg", quality=int(rng.integers(70, 96)))
        elif kind == "png":
            image.save(f"{stem}.png", compress_level=1)
        elif kind == "rgba":
            image.convert("RGBA").save(f"{stem}.png", compress_level=1)
        elif kind == "palette":
            image.convert("P", palette=Image.Palette.ADAPTIVE).save(f"{stem}.gif")
        elif kind == "grey":
            image.convert("L").save(f"{stem}.jpg", quality=90)
        elif kind == "cmyk":
            image.convert("CMYK").save(f"{stem}.jpg", quality=90)
        else:
            image.save(f"{stem}.webp", quality=85)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="albumgan-prepare-bench-") as tmp:
        raw = Path(tmp) / "raw"
        started = time.perf_counter()
        make_raw(raw, args.n)
        print(f"generated {args.n} raw images in {time.perf_counter() - started:.1f} s")
        summary = prepare(raw, Path(tmp) / "out", size=512, workers=args.workers)
    print(summary.table())
    print(
        f"prepare: {args.n / summary.seconds:.1f} images/s, wall {summary.seconds:.1f} s "
        f"({args.workers} workers; target <= 30 s for 500)"
    )


if __name__ == "__main__":
    main()
