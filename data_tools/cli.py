"""``albumgan data ...``: build, clean and list datasets.

albumgan data prepare SRC --out DIR [--size 512] [--fit crop|pad|squash] [--dedupe-distance 6]
                      [--exclude FILE] [--confirm FILE] [--min-source 256] [--workers N]
albumgan data synth --out DIR [--n 512] [--size 256] [--seed 0]
albumgan data list [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_tools import registry, synthetic

EXIT_USAGE = 2


def _prepare(args: argparse.Namespace) -> int:
    from data_tools.prepare import _read_names, prepare

    try:
        summary = prepare(
            args.src,
            args.out,
            size=args.size,
            fit=args.fit,
            dedupe_distance=args.dedupe_distance,
            exclude=_read_names(args.exclude),
            confirm=_read_names(args.confirm),
            min_source=args.min_source,
            workers=args.workers,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(summary.table())
    if summary.note():
        print(summary.note(), file=sys.stderr)
    print(f"dataset:  {summary.out / 'images'}")
    print(f"manifest: {summary.manifest}")
    print(f"review:   {summary.review}  (flagged images wait for your confirmation there)")
    return 0


def _crawl(args: argparse.Namespace) -> int:
    from data_tools.crawl import DEFAULT_KEYWORDS, CrawlError, crawl, report

    try:
        results = crawl(
            args.out,
            engines=tuple(args.engine or ["bing"]),
            keywords=tuple(args.keyword or DEFAULT_KEYWORDS),
            max_num=args.max_num,
            min_size=args.min_size,
            urls_file=args.urls,
        )
    except CrawlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(results))
    print(
        f"files and manifest.jsonl in {args.out}; next: albumgan data prepare {args.out} --out DIR"
    )
    return 0


def _gaon(args: argparse.Namespace) -> int:
    from data_tools.crawl import CrawlError
    from data_tools.gaon import fetch_covers

    try:
        fetched, missing, gaps = fetch_covers(args.out, args.chart, args.source)
    except (CrawlError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, CrawlError) else EXIT_USAGE
    print(f"fetched {len(fetched)} covers from {args.source} into {args.out}")
    if missing:
        print(f"no cover found for {len(missing)} albums:")
        for album in missing:
            print(f"  {album.label}")
    if gaps:
        print(f"gaps in the chart list ({len(gaps)} rows skipped): " + "; ".join(gaps))
    return 0


def _synth(args: argparse.Namespace) -> int:
    try:
        folder = synthetic.ensure_synthetic(args.out, n=args.n, size=args.size, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(folder)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = registry.describe(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        built = r["built"] or "not built"
        print(f"{r['name']:<{width}}  {r['count']:>5} images  {built:<19}  {r['path']}")
        if r["hint"]:
            print(f"{'':<{width}}  build: {r['hint']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="albumgan data", description="Build and list datasets.")
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="clean a raw image folder into a dataset")
    prep.add_argument("src", type=Path)
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--size", type=int, default=512)
    prep.add_argument("--fit", choices=("crop", "pad", "squash"), default="crop")
    prep.add_argument(
        "--dedupe-distance",
        type=int,
        default=6,
        help="max perceptual-hash bits apart for near duplicates (0 = exact only)",
    )
    prep.add_argument("--exclude", type=Path, help="file of names to drop")
    prep.add_argument("--confirm", type=Path, help="file of flagged names to keep (review.html)")
    prep.add_argument("--min-source", type=int, default=256, help="flag smaller sources")
    prep.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    prep.set_defaults(run=_prepare)

    crawl = sub.add_parser("crawl", help="download raw covers from image search (icrawler)")
    crawl.add_argument("--out", type=Path, required=True)
    crawl.add_argument(
        "--engine", action="append", choices=("bing", "google"), help="repeatable; default bing"
    )
    crawl.add_argument("--keyword", action="append", help="repeatable; default: the seed's")
    crawl.add_argument("--max-num", type=int, default=100, help="images per engine x keyword")
    crawl.add_argument("--min-size", type=int, default=300, help="skip smaller images (px)")
    crawl.add_argument("--urls", type=Path, help="also download a list of image URLs")
    crawl.set_defaults(run=_crawl)

    gaon = sub.add_parser("gaon", help="one cover per Gaon year-end chart album")
    gaon.add_argument("--out", type=Path, required=True)
    gaon.add_argument("--chart", type=Path, help="your own chart CSV (default: the shipped list)")
    gaon.add_argument("--source", choices=("itunes", "musicbrainz", "bing"), default="itunes")
    gaon.set_defaults(run=_gaon)

    syn = sub.add_parser("synth", help="write the embedded synthetic cover set")
    syn.add_argument("--out", type=Path, required=True)
    syn.add_argument("--n", type=int, default=512)
    syn.add_argument("--size", type=int, default=256)
    syn.add_argument("--seed", type=int, default=0)
    syn.set_defaults(run=_synth)

    lst = sub.add_parser("list", help="known datasets, where they live, counts, when built")
    lst.add_argument(
        "--data-dir", default=None, help="registry root (default $ALBUMGAN_DATA or data/)"
    )
    lst.set_defaults(run=_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
