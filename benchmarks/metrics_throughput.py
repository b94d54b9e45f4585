"""Metrics throughput: KID + FID + precision/recall, 500 real vs 500 fake at 64 px.

    python benchmarks/metrics_throughput.py [--n 500] [--resolution 64]

Uses the offline ``album`` extractor. Prints seconds with the real-feature cache cold (real and
fake featurised) and warm (only the fakes), as in training, where the real features are cached
once per dataset. Target: <= 30 s on 2 cores.
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

from albumgan.data_tools.synthetic import generate_cover  # noqa: E402
from albumgan.gan_core.contract import shown  # noqa: E402
from albumgan.gan_core.metrics.extractors import get_extractor  # noqa: E402
from albumgan.gan_core.metrics.score import cached_features, score_features  # noqa: E402


def covers(start: int, n: int, size: int) -> np.ndarray:
    return np.stack(
        [np.asarray(generate_cover(i, size=size, seed=4)) for i in range(start, start + n)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    real, fake = covers(0, args.n, args.resolution), covers(10_000, args.n, args.resolution)
    extractor = get_extractor("album")
    with tempfile.TemporaryDirectory() as cache:
        timings = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            real_feats = cached_features(real, extractor, "bench-real", cache)
            scores = score_features(real_feats, extractor(fake), extractor, args.resolution)
            timings[label] = time.perf_counter() - start
    print(
        f"{args.n} real vs {args.n} fake at {args.resolution} px, extractor "
        f"{scores['extractor']} ({real_feats.shape[1]}-d)"
    )
    print(
        f"KID {shown(scores['kid'])} ± {shown(scores['kid_std'])}, FID {shown(scores['fid'])}, "
        f"precision {shown(scores['precision'])}, recall {shown(scores['recall'])}"
    )
    print(
        f"seconds: cold cache {timings['cold']:.2f}, warm cache {timings['warm']:.2f} "
        f"(target <= 30)"
    )


if __name__ == "__main__":
    main()
