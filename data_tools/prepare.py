"""``albumgan data prepare SRC [SRC ...] --out DIR``: raw image folders -> a clean, square,
deduped set.

    albumgan data prepare data/raw/crawled [MORE_SRC ...] --out data/crawled [--size 512]
        [--fit crop|pad|squash] [--dedupe-distance 6] [--exclude FILE] [--confirm FILE]
        [--keep-flagged] [--min-source 128] [--workers 2]

Writes ``DIR/images/*.png`` (the dataset), ``DIR/flagged/*.png`` (likely non-covers, held back
until a person confirms them), ``DIR/manifest.jsonl`` (exactly one line per input file, with its
crawl/gaon ``origin`` when known) and ``DIR/review.html`` (a contact sheet of flagged images with
their reasons and a button that downloads the list to pass back as ``--confirm``; rendered from
``data_tools/templates/review.html.j2``).

Every file is opened safely (``data_tools.imageops``): empty, truncated, non-image, HTML-as-.jpg
and decompression-bomb files are rejected with a reason, never fatal. Exact duplicates (same
decoded pixels) and near duplicates (perceptual hash within ``--dedupe-distance`` bits) collapse
to the largest source. The hash is computed on greyscale, so a recoloured edition of a cover can
merge with the original: lower the distance (0 = exact duplicates only) to keep editions apart.
Output names are the source's content hash, so re-running is idempotent.

``DIR`` is shared with its owner: prepare replaces or removes only files that its own previous
``DIR/manifest.jsonl`` lists, and leaves anything else in ``images/`` and ``flagged/`` alone (the
CLI notes them on stderr; training reads the manifest's kept images, so they are not trained on).
A ``DIR`` that is ``SRC``, lies inside it or contains it is refused before anything is written.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import jinja2
import numpy as np
from PIL import Image
from scipy import ndimage

from albumgan.data_tools.imageops import FITS, UnreadableImage, open_rgb, square_resize
from albumgan.data_tools.registry import is_prepare_manifest
from albumgan.gan_core.contract import UsageError
from albumgan.gan_core.fileio import atomic_write, read_jsonl, write_text

STATUSES = ("kept", "duplicate", "flagged", "rejected")
HARD_MIN_SIDE = 32  # smaller than this is not a cover at all: rejected, not flagged
MAX_INPUT_BYTES = 64 * 2**20  # a larger file is rejected unread (covers are a few MB at most)
MAX_ASPECT = 1.45  # covers are square (scans reach 1.41); 3:2 photos and screens are wider
FLAT_STD = 2.5  # colour std on a 64 px thumbnail below this: blank (a one-colour cover: >= 6)
PLAIN_BACKGROUND = 0.45  # share of pixels at the dominant grey level for a page or a screen
TEXT_LINES = 12  # lines of text on it that make a page or a screenshot (real covers: <= 9)
DEFAULT_MIN_SOURCE = 128  # px: flag smaller sources (twice the seed's 64 px training size)
PNG_COMPRESS_LEVEL = 3  # fast to write, ~10% larger than level 9
PROVENANCE = "manifest.jsonl"  # written by the crawler and the Gaon fetcher beside raw files
# Copied into each prepared record as "origin", so a dataset's source mix survives preparing.
ORIGIN_FIELDS = ("engine", "keyword", "source", "year", "rank", "artist", "album", "url")
OUTPUT_FOLDERS = ("images", "flagged")
# The only names prepare ever writes there: the first 20 hex digits of the source's sha256.
OUTPUT_NAME = re.compile(r"(images|flagged)/[0-9a-f]{20}\.png")
REVIEW_TITLE = "<title>Dataset review</title>"  # how prepare recognises its own review.html


@dataclass
class Inspected:
    """What one worker learned about one input file."""

    src: str  # path relative to SRC
    sha256: str
    size_bytes: int
    reason: str = ""  # set when the file is rejected
    width: int = 0
    height: int = 0
    pixel_hash: str = ""
    phash: str = ""
    flags: list[str] = field(default_factory=list)
    staged: str = ""  # the squared, resized PNG in the staging folder


@dataclass
class Summary:
    """Counts per status, where things went, how long it took."""

    out: Path
    counts: dict[str, int]
    seconds: float
    manifest: Path
    review: Path
    foreign: list[str] = field(default_factory=list)  # left alone in images/, flagged/ (rel. out)

    def note(self) -> str:
        """One line about files in images/ and flagged/ that prepare did not write; "" if none."""
        if not self.foreign:
            return ""
        n = len(self.foreign)
        folders = sorted({f"{self.out / name.split('/')[0]}" for name in self.foreign})
        shown = ", ".join(self.foreign[:5]) + (", ..." if n > 5 else "")
        return (
            f"note: {n} {'file or folder' if n == 1 else 'files or folders'} in "
            f"{' and '.join(folders)} ({shown}) {'was' if n == 1 else 'were'} not written by "
            "prepare and left alone; they are not part of the dataset's manifest, so training "
            "does not read them"
        )

    def table(self) -> str:
        rows = [f"{status:<10} {self.counts.get(status, 0):>6}" for status in STATUSES]
        total = sum(self.counts.values())
        return "\n".join(
            ["status      files", *rows, f"{'total':<10} {total:>6}", f"({self.seconds:.1f} s)"]
        )


# ------------------------------------------------------------------------------------------------
# Stage 1 (worker processes): decode, measure, square + resize, stage the PNG.
# ------------------------------------------------------------------------------------------------


def _flags(image: Image.Image, width: int, height: int, min_source: int) -> list[str]:
    """Reasons to think this is not an album cover (heuristics: a person decides).

    Tuned on the seed's 94 real popular covers (none flagged) against screenshots, photos of
    text pages and blank placeholders (all flagged): minimalist covers (one colour and a small
    title) and covers of 200-300 px, which the seed's crawl is full of, are covers.
    """
    flags = []
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        flags.append(f"aspect ratio {aspect:.2f} (covers are square)")
    if min(width, height) < min_source:
        flags.append(f"small source {width}x{height} (< {min_source} px)")
    thumb = np.asarray(image.resize((64, 64), Image.Resampling.BILINEAR), np.float32)
    spread = float(thumb.std(axis=(0, 1)).max())  # colour counts: a pink page is not blank
    if spread < FLAT_STD:
        flags.append(f"near-flat image (colour std {spread:.1f})")
    elif (lines := _text_lines(image)) >= TEXT_LINES:
        flags.append(f"screenshot/text page: {lines} lines of text on a plain background")
    return flags


def _text_lines(image: Image.Image) -> int:
    """How many lines of text a plain background holds (0 when the background is not plain).

    At 512 px, "ink" is what differs from the dominant grey level by more than 48; letters and
    words are ink components 4-24 px high; a line is 5 or more of them side by side on one
    baseline (3 px bands), each within 1.5 heights of the last. A cover's title gives a line
    or two, a page of text or a UI screenshot dozens.
    """
    grey = image.convert("L")
    scale = 512 / max(grey.size)
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    pixels = np.asarray(grey.resize(size, Image.Resampling.BILINEAR), np.float32)
    background = np.bincount((pixels // 16).astype(int).ravel(), minlength=16).argmax() * 16 + 8
    if (np.abs(pixels - background) <= 16).mean() < PLAIN_BACKGROUND:
        return 0  # a photo, a painting: no page to hold lines of text
    components = ndimage.find_objects(
        ndimage.label(np.abs(pixels - background) > 48, structure=np.ones((3, 3)))[0]
    )
    baselines: dict[int, list[tuple[int, int, int]]] = {}
    for rows, cols in components:
        high, wide = rows.stop - rows.start, cols.stop - cols.start
        if 4 <= high <= 24 and wide <= 10 * high:  # a letter, or a word whose letters touch
            baselines.setdefault(rows.stop // 3, []).append((cols.start, cols.stop, high))
    lines = 0
    for marks in baselines.values():
        run, end = 0, None
        for start, stop, high in sorted(marks):
            run = run + 1 if end is not None and start - end <= 1.5 * high else 1
            lines += run == 5  # counted once, when the run reaches five
            end = stop
    return lines


def _inspect(task: tuple[Path, str, int, str, Path, int]) -> Inspected:
    path, src, size, fit, staging, min_source = task
    stored = path.stat().st_size
    if stored > MAX_INPUT_BYTES:  # hashed as a stream, never decoded or held in memory
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        item = Inspected(src=src, sha256=digest, size_bytes=stored)
        item.reason = (
            f"too large for an image: {stored / 2**20:,.0f} MB, over the "
            f"{MAX_INPUT_BYTES // 2**20} MB cap (not decoded)"
        )
        return item
    data = path.read_bytes()
    item = Inspected(src=src, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    try:
        image, (item.width, item.height) = open_rgb(path, draft_size=size)
    except UnreadableImage as exc:
        item.reason = str(exc)
        return item
    if min(item.width, item.height) < HARD_MIN_SIDE:
        item.reason = f"too small to be a cover: {item.width}x{item.height}"
        return item
    item.pixel_hash = hashlib.sha256(f"{image.size}".encode() + image.tobytes()).hexdigest()
    item.phash = str(imagehash.phash(image))
    item.flags = _flags(image, item.width, item.height, min_source)
    staged = staging / f"{item.sha256[:20]}.png"
    square_resize(image, size, fit).save(staged, compress_level=PNG_COMPRESS_LEVEL)
    item.staged = str(staged)
    return item


# ------------------------------------------------------------------------------------------------
# Stage 2 (main process): duplicates, flags, outputs.
# ------------------------------------------------------------------------------------------------


def _read_names(path: Path | None) -> set[str]:
    """Names in an --exclude/--confirm file: one per line, '#' comments, relative path or name."""
    if path is None:
        return set()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names


def _listed(src: str, names: set[str]) -> bool:
    return src in names or Path(src).name in names


def _duplicate_groups(items: list[Inspected], distance: int) -> dict[int, list[int]]:
    """Union-find over exact (pixel hash) and near (phash Hamming <= distance) duplicates."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first_with_pixels: dict[str, int] = {}
    for i, item in enumerate(items):
        j = first_with_pixels.setdefault(item.pixel_hash, i)
        if j != i:
            union(i, j)
    if distance > 0 and len(items) > 1:
        hashes = np.array([int(item.phash, 16) for item in items], dtype=np.uint64)
        for i in range(len(items) - 1):
            xor = hashes[i] ^ hashes[i + 1 :]
            bits = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
            for j in np.nonzero(bits <= distance)[0]:
                union(i, i + 1 + int(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(find(i), []).append(i)
    return groups


def _largest(items: list[Inspected], members: list[int]) -> int:
    """The group's best source: the most pixels; among equals the first in name order."""
    return max(members, key=lambda i: (items[i].width * items[i].height, -i))


def _decide(
    inspected: list[Inspected],
    distance: int,
    exclude: set[str],
    confirm: set[str],
    keep_flagged: bool = False,
) -> list[dict]:
    """One manifest record per input, in input order. ``keep_flagged``: flagged images are kept
    (their reasons recorded), as if each were confirmed."""
    records = []
    decodable = [i for i, item in enumerate(inspected) if not item.reason]
    items = [inspected[i] for i in decodable]
    duplicate_of: dict[int, tuple[int, str]] = {}
    for members in _duplicate_groups(items, distance).values():
        keep = _largest(items, members)
        for m in members:
            if m != keep:
                same = items[m].pixel_hash == items[keep].pixel_hash
                how = "exact duplicate" if same else "near duplicate"
                duplicate_of[decodable[m]] = (decodable[keep], how)
    for i, item in enumerate(inspected):
        record = {
            "src": item.src,
            "status": "kept",
            "reason": "",
            "sha256": item.sha256,
            "phash": item.phash or None,
            "width": item.width or None,
            "height": item.height or None,
            "out": None,
        }
        if _listed(item.src, exclude):
            record.update(status="rejected", reason="excluded by --exclude")
        elif item.reason:
            record.update(status="rejected", reason=item.reason)
        elif i in duplicate_of:
            j, how = duplicate_of[i]
            record.update(status="duplicate", reason=f"{how} of {inspected[j].src}")
        elif item.flags and not _listed(item.src, confirm) and not keep_flagged:
            record.update(status="flagged", reason="; ".join(item.flags))
            record["out"] = f"flagged/{Path(item.staged).name}"
        else:
            how = "confirmed" if _listed(item.src, confirm) else "kept by --keep-flagged"
            reason = f"{how}: {'; '.join(item.flags)}" if item.flags else ""
            record.update(status="kept", reason=reason, out=f"images/{Path(item.staged).name}")
        records.append(record)
    return records


def _check_out(src_dir: Path, out_dir: Path) -> set[str]:
    """Refuse an ``out_dir`` prepare must not write into; return the outputs it owns there.

    Owned outputs are those the previous manifest (an earlier run into the same folder) lists:
    the only files in images/ and flagged/ that this run may replace or remove.

    Raises:
        UsageError: ``out_dir`` overlaps ``src_dir``, is not a folder, or holds a manifest.jsonl,
            review.html, images or flagged that prepare did not write.
    """
    src_real, out_real = src_dir.resolve(), out_dir.resolve()
    if out_real == src_real:
        why = "is the same folder as"
    elif src_real in out_real.parents:
        why = "is inside"
    elif out_real in src_real.parents:
        why = "contains"
    else:
        why = ""
    if why:
        raise UsageError(
            f"--out {_shown(out_dir)} {why} SRC {_shown(src_dir)}: prepare writes images/, "
            "flagged/, manifest.jsonl and review.html into --out and must not mix them with the "
            "raw files it reads; choose an --out outside SRC that does not contain it"
        )
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise UsageError(f"--out must be a folder, got the file {str(out_dir)!r}")
    for folder in OUTPUT_FOLDERS:
        if os.path.lexists(out_dir / folder) and not (out_dir / folder).is_dir():
            raise UsageError(
                f"{out_dir / folder} is not a folder; move it away or pick another --out"
            )
    review = out_dir / "review.html"
    if os.path.lexists(review) and not (review.is_file() and _is_review_page(review)):
        raise UsageError(
            f"{review} was not written by prepare; move it away or pick another --out"
        )
    manifest = out_dir / "manifest.jsonl"
    if not os.path.lexists(manifest):
        return set()
    try:
        records = read_jsonl(manifest)
    except (OSError, UnicodeDecodeError):
        records = [None]  # a folder, or not text: not a manifest prepare wrote
    if not is_prepare_manifest(records):
        raise UsageError(
            f"{manifest} was not written by prepare (a crawl or gaon manifest?); prepare would "
            "replace it: choose another --out"
        )
    return {
        r["out"]
        for r in records
        if isinstance(r.get("out"), str) and OUTPUT_NAME.fullmatch(r["out"])
    }


def _shown(path: Path) -> str:
    """A path as the user gave it, plus where it really is when that differs (symlinks, ..)."""
    real = path.resolve()
    return repr(str(path)) if path.absolute() == real else f"{str(path)!r} (= {str(real)!r})"


def _is_review_page(path: Path) -> bool:
    with path.open("rb") as handle:
        return REVIEW_TITLE.encode() in handle.read(4096)


def _place_outputs(
    records: list[dict], inspected: list[Inspected], out: Path, owned: set[str]
) -> list[str]:
    """Move staged PNGs into images/ and flagged/ and remove the previous run's outputs that are
    no longer produced. Only ``owned`` files are replaced or removed; anything else in those
    folders is left as it is and returned (paths relative to ``out``).

    Raises:
        UsageError: an output's name is taken by a different file that prepare did not write
            (checked for every output before anything in ``out`` changes).
    """
    wanted = {record["out"]: item for record, item in zip(records, inspected) if record["out"]}
    adopted = set()
    for rel, item in wanted.items():
        target = out / rel
        if not os.path.lexists(target) or (rel in owned and not target.is_dir()):
            continue
        # The same bytes: this run's own output, placed by a run killed before its manifest.
        if target.is_file() and filecmp.cmp(target, item.staged, shallow=False):
            adopted.add(rel)
            continue
        raise UsageError(
            f"{target} exists and was not written by prepare (it is not in "
            f"{out / 'manifest.jsonl'}); move it away or choose another --out"
        )
    for folder in OUTPUT_FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)
    for rel in sorted(owned - wanted.keys()):
        if not (out / rel).is_dir():
            (out / rel).unlink(missing_ok=True)
    for rel, item in wanted.items():
        if rel not in adopted:
            os.replace(item.staged, out / rel)
    return sorted(
        f"{folder}/{path.name}"
        for folder in OUTPUT_FOLDERS
        for path in (out / folder).iterdir()
        if f"{folder}/{path.name}" not in wanted
    )


def _write_manifest(records: list[dict], path: Path) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _recorded_name(name: str, folder: Path) -> str:
    """A file's name as the manifest and the review page record it. A name whose bytes are not
    UTF-8 (Python holds them as surrogates, which no UTF-8 file can store) is recorded with
    those bytes escaped (``bad\\xffname.jpg``), and reported once; the file itself is read
    by its real name."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        print(
            f"warning: {folder}/{shown}: its name is not UTF-8; recorded as {shown!r}",
            file=sys.stderr,
        )
        return shown


def list_inputs(src: Path, out: Path) -> list[Path]:
    """Every regular file under ``src`` (any name: a .jpg may be HTML), skipping ``out``, the
    crawl/gaon provenance manifests and the files those manifests set aside (``data gaon``'s
    covers below its ``--min-size``)."""
    out = out.resolve()
    aside = set_aside_files(src)
    return sorted(
        p
        for p in src.rglob("*")
        if p.is_file()
        and out not in p.resolve().parents
        and not p.name.startswith(".")
        and p.name != PROVENANCE
        and p.resolve() not in aside
    )


def set_aside_files(src: Path) -> set[Path]:
    """Files a provenance manifest under ``src`` marks ``set_aside`` (with its reason)."""
    aside = set()
    for manifest in src.rglob(PROVENANCE):
        for record in read_jsonl(manifest):
            if record.get("set_aside") and "file" in record:
                aside.add((manifest.parent / record["file"]).resolve())
    return aside


def provenance(src: Path) -> dict[str, dict]:
    """Where each raw file came from, by its path relative to ``src``: the fields of the
    ``manifest.jsonl`` lines that ``albumgan data crawl`` / ``data gaon`` wrote beside it."""
    origins = {}
    for manifest in src.rglob(PROVENANCE):
        for record in read_jsonl(manifest):
            if "file" in record:
                rel = (manifest.parent / record["file"]).relative_to(src).as_posix()
                origins[rel] = {k: record[k] for k in ORIGIN_FIELDS if record.get(k) is not None}
    return origins


def prepare(
    src: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    size: int = 512,
    fit: str = "crop",
    dedupe_distance: int = 6,
    exclude: Iterable[str] = (),
    confirm: Iterable[str] = (),
    min_source: int = DEFAULT_MIN_SOURCE,
    workers: int | None = None,
    keep_flagged: bool = False,
) -> Summary:
    """Clean ``src`` (one folder, or several into one dataset) into ``out``; see the module
    docstring. With several folders, each file's name in the manifest, ``--exclude`` and
    ``--confirm`` starts with its folder's name (``girlalbum/cover.jpg``); duplicates are found
    across all of them.

    Raises:
        UsageError: bad arguments, a ``src`` that is not a folder, or an ``out`` that overlaps
            one or holds files prepare would have to replace without having written them.
    """
    sources = [Path(src)] if isinstance(src, (str, os.PathLike)) else [Path(s) for s in src]
    out_dir = Path(out)
    for folder in sources or [Path("")]:
        if not str(folder) or not folder.is_dir():
            raise UsageError(f"SRC must be a folder, got {str(folder)!r}")
    if fit not in FITS:
        raise UsageError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    if size < 16 or dedupe_distance < 0 or min_source < 0:
        raise UsageError(
            f"expected --size >= 16, --dedupe-distance >= 0, --min-source >= 0; got "
            f"{size=}, {dedupe_distance=}, {min_source=}"
        )
    owned = set()
    for folder in sources:
        owned = _check_out(folder, out_dir)  # before anything is written
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    prefixes = _source_prefixes(sources)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        tasks, origins = [], {}
        for folder, prefix in zip(sources, prefixes):
            for path in list_inputs(folder, out_dir):
                name = prefix + _recorded_name(path.relative_to(folder).as_posix(), folder)
                tasks.append((path, name, size, fit, staging, min_source))
            origins.update({prefix + k: v for k, v in provenance(folder).items()})
        workers = workers or min(len(tasks), os.cpu_count() or 1) or 1
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                inspected = list(pool.map(_inspect, tasks, chunksize=4))
        else:
            inspected = [_inspect(task) for task in tasks]
        records = _decide(inspected, dedupe_distance, set(exclude), set(confirm), keep_flagged)
        for record in records:
            if record["src"] in origins:
                record["origin"] = origins[record["src"]]
        foreign = _place_outputs(records, inspected, out_dir, owned)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = out_dir / "manifest.jsonl"
    _write_manifest(records, manifest)
    review = out_dir / "review.html"
    write_text(review, render_review(records))
    counts = Counter(r["status"] for r in records)
    seconds = time.perf_counter() - start
    return Summary(out_dir, dict(counts), seconds, manifest, review, foreign)


def _source_prefixes(sources: list[Path]) -> list[str]:
    """How each source's files are named in the manifest: as they are for one source; for
    several, under the source folder's name (``name-2`` for a second folder of that name)."""
    if len(sources) == 1:
        return [""]
    names = [folder.resolve().name or "src" for folder in sources]
    prefixes = []
    for i, name in enumerate(names):
        before = names[:i].count(name)
        prefixes.append(f"{name}/" if not before else f"{name}-{before + 1}/")
    return prefixes


# ------------------------------------------------------------------------------------------------
# review.html
# ------------------------------------------------------------------------------------------------

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # file names and reasons come from the raw folder: "<img onerror>.png"
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_review(records: Sequence[dict]) -> str:
    """The contact sheet (``templates/review.html.j2``); every file name and reason escaped."""
    counts = Counter(r["status"] for r in records)
    return _TEMPLATES.get_template("review.html.j2").render(
        summary=", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES),
        flagged=[r for r in records if r["status"] == "flagged"],
        duplicates=[r for r in records if r["status"] == "duplicate"],
        rejected=[r for r in records if r["status"] == "rejected"],
    )
