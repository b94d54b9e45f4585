"""The ``albumgan`` command.

    albumgan train [--config PRESET] [--key=value ...]     same arguments as experiments/train.py
    albumgan sample RUN_DIR [--n 64] [--out DIR] [--format jpg|png] [--seed 0]
    albumgan data prepare|synth|list ...                     build, clean and list datasets

Other tools (data, metrics, sweeps, reports) join as subcommands as they land.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import train as train_entry

EXIT_USAGE = 2


def _sample(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="albumgan sample", description="Write generated images.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--n", type=int, default=64, help="how many images (default 64)")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/generated")
    parser.add_argument("--format", choices=("jpg", "png"), default="png")
    parser.add_argument("--seed", type=int, default=0, help="latent seed")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    from gan_core.sampling import sample_images

    out = args.out or args.run_dir / "generated"
    try:
        paths = sample_images(args.run_dir, args.n, out, args.format, args.seed)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {len(paths)} images to {out}")
    return 0


def _data(argv: list[str]) -> int:
    from data_tools.cli import main as data_main

    return data_main(argv)


COMMANDS = {"train": train_entry.main, "sample": _sample, "data": _data}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(
                f"error: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return 0 if argv else EXIT_USAGE
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
