"""The ``albumgan`` command (albumgan --version: the installed version).

albumgan train [--config PRESET] [--key=value ...]     same arguments as experiments/train.py
albumgan sample RUN_DIR [--n 64] [--out DIR] [--format jpg|png] [--seed 0]
albumgan sample RUN_DIR --checkpoint best                 the lowest-KID checkpoint
albumgan data crawl|gaon|prepare|synth|list ...          build, clean and list datasets
albumgan evaluate --real DATASET --fake DIR_OR_RUN [--grid RxC] [--extractor album|inception]
                  [--resolution 64] [--json]               KID, FID, precision/recall
albumgan metrics fetch-weights                            InceptionV3 weights (online)
albumgan sweep validate|run|status ...                    W&B sweep files run by Optuna
albumgan report run RUN_DIR                               RUN_DIR/report/index.html + report.md
albumgan report sweep --storage X --study NAME            a study's leaderboard and charts
albumgan report compare RUN_DIR RUN_DIR... [--out DIR]    runs side by side
"""

from __future__ import annotations

import sys
from pathlib import Path

from albumgan.experiments import train as train_entry
from albumgan.gan_core.contract import (
    EXIT_USAGE,
    EXTRA_SCORES,
    EXTRACTORS,
    SCORES,
    ArgumentParser,
    UsageError,
    bounded_int,
    handles_errors,
    plain,
    quiet_broken_pipe,
    shown,
    version,
)


def _sample(argv: list[str]) -> int:
    parser = ArgumentParser(prog="albumgan sample", description="Write generated images.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--n", type=bounded_int(1, 1_000_000), default=64, help="how many images (default 64)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder (default: RUN_DIR/generated); sample_00000.FORMAT, ... there are replaced, "
        "other files are left alone",
    )
    parser.add_argument("--format", choices=("jpg", "png"), default="png")
    parser.add_argument(
        "--seed", type=bounded_int(0, 2**32 - 1), default=0, help="latent seed (0 .. 2^32-1)"
    )
    parser.add_argument(
        "--checkpoint",
        choices=("final", "best"),
        default="final",
        help="final generator (default) or the lowest-KID checkpoint",
    )
    args = parser.parse_args(argv)
    from albumgan.gan_core.sampling import sample_images

    out = args.out or args.run_dir / "generated"
    if out.exists() and not out.is_dir():  # before loading anything: fail in a second
        label = f"--out {out}" if args.out else str(out)
        raise UsageError(f"{label}: is a file, not a folder")
    count = sample_images(args.run_dir, args.n, out, args.format, args.seed, args.checkpoint)
    print(f"wrote {count} images to {out}")
    return 0


def _evaluate(argv: list[str]) -> int:
    parser = ArgumentParser(prog="albumgan evaluate", description="Score images.")
    parser.add_argument("--real", required=True, help="dataset name or folder of real images")
    parser.add_argument("--fake", required=True, type=Path, help="folder, run dir or grid folder")
    parser.add_argument("--grid", help="cut each fake image into ROWSxCOLS tiles, e.g. 8x8")
    parser.add_argument("--extractor", choices=EXTRACTORS, default=EXTRACTORS[0])
    parser.add_argument("--inception-weights", help="weights file for --extractor inception")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--checkpoint", choices=("final", "best"), default="final")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    import json

    from albumgan.experiments.evaluate import evaluate

    scores = evaluate(
        args.real,
        args.fake,
        args.resolution,
        args.extractor,
        args.grid,
        args.checkpoint,
        args.inception_weights,
    )
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{'kid':<11} {shown(scores['kid'])} ± {shown(scores['kid_std'])}")
        for key in [k for k in (*SCORES, *EXTRA_SCORES) if not k.startswith("kid")]:
            print(f"{key:<11} {shown(scores[key])}")
        print(
            f"({scores['extractor']} {scores['extractor_version']}, {scores['resolution']} px, "
            f"{scores['n_real']} real vs {scores['n_fake']} fake)"
        )
    return 0


def _metrics(argv: list[str]) -> int:
    parser = ArgumentParser(prog="albumgan metrics")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch-weights", help="download the Keras InceptionV3 weights (online)")
    parser.parse_args(argv)
    from albumgan.gan_core.metrics.extractors import fetch_inception_weights

    print(fetch_inception_weights())
    return 0


def _sweep(argv: list[str]) -> int:
    from albumgan.sweeps.cli import main as sweep_main

    return sweep_main(argv)


def _report(argv: list[str]) -> int:
    from albumgan.reports.cli import main as report_main

    return report_main(argv)


def _data(argv: list[str]) -> int:
    from albumgan.data_tools.cli import main as data_main

    return data_main(argv)


COMMANDS = {
    "train": train_entry.main,
    "sample": _sample,
    "data": _data,
    "evaluate": _evaluate,
    "metrics": _metrics,
    "sweep": _sweep,
    "report": _report,
}


@handles_errors
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(plain(__doc__))
        return 0
    if argv[:1] in (["-V"], ["--version"]):
        print(f"albumgan {version()}")
        return 0
    if not argv:
        print(__doc__, file=sys.stderr)
        return EXIT_USAGE
    if argv[0] not in COMMANDS:
        raise UsageError(
            f"unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)} (see albumgan --help)"
        )
    return COMMANDS[argv[0]](argv[1:])


# Commands that load a framework, whose harmless start-up notices `quiet` keeps off stderr.
FRAMEWORK_COMMANDS = ("train", "sample", "evaluate")


def console() -> int:
    """The installed ``albumgan`` command: ``main`` with stderr kept free of framework notices."""
    if sys.argv[1:2] and sys.argv[1] in FRAMEWORK_COMMANDS:
        from albumgan.experiments import quiet

        quiet.install()
    code = main()
    try:
        sys.stdout.flush()  # what is still buffered: a reader that has gone is a quiet end too
    except BrokenPipeError:
        return quiet_broken_pipe()
    return code


if __name__ == "__main__":
    sys.exit(console())
