"""``albumgan data ...``: build, clean and list datasets.

albumgan data prepare SRC [SRC ...] --out DIR [--size 512] [--fit crop|pad|squash]
                      [--dedupe-distance 6] [--exclude FILE] [--confirm FILE] [--keep-flagged]
                      [--min-source 128] [--workers N]
albumgan data gaon --out DIR [--chart CSV] [--source itunes,musicbrainz,bing] [--min-size 300]
                   [--source-url NAME=BASE]...
albumgan data synth --out DIR [--n 512] [--size 256] [--seed 0]
albumgan data list [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from albumgan.data_tools import registry, synthetic
from albumgan.data_tools.prepare import DEFAULT_MIN_SOURCE
from albumgan.gan_core.contract import ArgumentParser, UsageError, bounded_int, handles_errors


def _prepare(args: argparse.Namespace) -> int:
    from albumgan.data_tools.prepare import _read_names, prepare

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
        keep_flagged=args.keep_flagged,
    )
    print(summary.table())
    if summary.note():
        print(summary.note(), file=sys.stderr)
    print(f"dataset:  {summary.out / 'images'}")
    print(f"manifest: {summary.manifest}")
    if summary.counts.get("flagged"):
        print(f"review:   {summary.review}  (flagged images wait for your confirmation there)")
    else:
        print(f"review:   {summary.review}")
    return 0


def _crawl(args: argparse.Namespace) -> int:
    from albumgan.data_tools.crawl import DEFAULT_KEYWORDS, crawl, parse_engine_urls, report

    engines = tuple(args.engine or ["bing"])
    engine_urls = parse_engine_urls(args.engine_url or [], engines)
    results = crawl(
        args.out,
        engines=engines,
        keywords=tuple(args.keyword or DEFAULT_KEYWORDS),
        max_num=args.max_num,
        min_size=args.min_size,
        urls_file=args.urls,
        engine_urls=engine_urls,
        allow_local=args.allow_local,
        max_file_bytes=args.max_file_mb * 2**20,
    )
    print(report(results))
    print(
        f"files and manifest.jsonl in {args.out}; next: albumgan data prepare {args.out} --out DIR"
    )
    return 0


def _gaon(args: argparse.Namespace) -> int:
    from albumgan.data_tools.gaon import CoverFetcher, fetch_covers, parse_sources

    sources = parse_sources(args.source)
    urls = dict(_name_value("--source-url", item) for item in args.source_url or [])
    result = fetch_covers(
        args.out,
        args.chart,
        sources,
        CoverFetcher(urls=urls, allow_local=args.allow_local),
        min_size=args.min_size,
    )
    served = ", ".join(f"{source} {result.served[source]}" for source in sources)
    print(f"fetched {len(result.fetched)} covers into {args.out} ({served})")
    if result.set_aside:
        print(
            f"set aside {len(result.set_aside)} covers under --min-size {args.min_size} px in "
            f"{args.out / 'set-aside'} (not used)"
        )
    if result.missing:
        print(f"no source could serve {len(result.missing)} albums:")
        for album, said in result.missing.items():
            print(f"  {album.label}: " + "; ".join(said))
    if result.gaps:
        print(
            f"gaps in the chart list ({len(result.gaps)} rows skipped): " + "; ".join(result.gaps)
        )
    return 0


def _name_value(flag: str, text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise UsageError(f"{flag}: expected NAME=URL, got {text!r}")
    return name.strip(), value.strip()


def _synth(args: argparse.Namespace) -> int:
    folder = synthetic.ensure_synthetic(args.out, n=args.n, size=args.size, seed=args.seed)
    print(folder)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = registry.describe(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  (train with --dataset=NAME)")
    for r in rows:
        built = r["built"] or "not built"
        print(f"{r['name']:<{width}}  {r['count']:>5} images  {built:<19}  {r['path']}")
        if r["hint"]:
            print(f"{'':<{width}}  build: {r['hint']}")
    return 0


MAX_SIZE = 4096  # a prepared image's side: 8x the seed's 512, 50 MB decoded
MAX_SYNTH_SIZE = 1024  # synthetic covers are drawn in memory, all at once


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="albumgan data", description="Build and list datasets.")
    sub = parser.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="clean a raw image folder into a dataset")
    prep.add_argument("src", type=Path, nargs="+", help="raw image folders (one dataset)")
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--size", type=bounded_int(8, MAX_SIZE), default=512)
    prep.add_argument("--fit", choices=("crop", "pad", "squash"), default="crop")
    prep.add_argument(
        "--dedupe-distance",
        type=int,
        default=6,
        help="max perceptual-hash bits apart for near duplicates (0 = exact only)",
    )
    prep.add_argument("--exclude", type=Path, help="file of names to drop")
    prep.add_argument(
        "--confirm",
        type=Path,
        help="confirmed.txt: flagged names to keep, one per line (review.html writes it)",
    )
    prep.add_argument(
        "--keep-flagged", action="store_true", help="keep flagged images too (reasons recorded)"
    )
    prep.add_argument(
        "--min-source", type=int, default=DEFAULT_MIN_SOURCE, help="flag smaller sources (px)"
    )
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
    crawl.add_argument(
        "--engine-url",
        action="append",
        metavar="[NAME=]TEMPLATE",
        help="result-page URL with {keyword} and {offset} (google: also {page}), e.g. a regional "
        "Bing or a caching proxy; NAME is bing or google, repeatable; bare for the only engine",
    )
    crawl.add_argument(
        "--allow-local",
        action="store_true",
        help="also download result URLs on loopback or private addresses (skipped by default: "
        "a search result should not make the crawler fetch from this machine's network)",
    )
    crawl.add_argument(
        "--max-file-mb",
        type=bounded_int(1, 4096),
        default=50,
        help="skip files larger than this many MB, never holding more in memory (default 50)",
    )
    crawl.set_defaults(run=_crawl)

    gaon = sub.add_parser("gaon", help="one cover per Gaon year-end chart album")
    gaon.add_argument("--out", type=Path, required=True)
    gaon.add_argument("--chart", type=Path, help="your own chart CSV (default: the shipped list)")
    gaon.add_argument(
        "--source",
        default="itunes,musicbrainz,bing",
        help="sources tried in order per album until one gives a full-size cover "
        "(default: itunes,musicbrainz,bing)",
    )
    gaon.add_argument("--min-size", type=int, default=300, help="smaller covers are set aside")
    gaon.add_argument(
        "--source-url",
        action="append",
        metavar="NAME=BASE",
        help="a mirror or proxy: itunes|musicbrainz|coverart=BASE (scheme and host replaced, "
        "paths kept), bing=TEMPLATE (as data crawl --engine-url); repeatable",
    )
    gaon.add_argument(
        "--allow-local",
        action="store_true",
        help="also download Bing results on loopback or private addresses (as data crawl)",
    )
    gaon.set_defaults(run=_gaon)

    syn = sub.add_parser("synth", help="write the embedded synthetic cover set")
    syn.add_argument("--out", type=Path, required=True)
    syn.add_argument("--n", type=bounded_int(1, 100_000), default=512)
    syn.add_argument("--size", type=bounded_int(8, MAX_SYNTH_SIZE), default=256)
    syn.add_argument("--seed", type=bounded_int(0, 2**32 - 1), default=0)
    syn.set_defaults(run=_synth)

    lst = sub.add_parser("list", help="known datasets, where they live, counts, when built")
    lst.add_argument(
        "--data-dir", default=None, help="registry root (default $ALBUMGAN_DATA or data/)"
    )
    lst.set_defaults(run=_list)
    return parser


@handles_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
