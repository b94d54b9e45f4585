"""`albumgan data prepare` on a fixture folder holding every kind of messy input."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from albumgan.data_tools.prepare import prepare
from albumgan.data_tools.synthetic import generate_cover

ROOT = Path(__file__).resolve().parents[2]


def _cover(i: int, side: int = 400) -> Image.Image:
    return generate_cover(i, size=side, seed=3)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header that claims a huge image (the body is irrelevant: open() refuses)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
    png += struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    return png + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))


def _exif_rotated_jpeg(path: Path) -> None:
    """Stored 500x450, left half red, right half blue, EXIF orientation 6 (shown rotated 90 CW)."""
    stored = np.zeros((450, 500, 3), np.uint8)
    stored[:, :250] = (255, 0, 0)
    stored[:, 250:] = (0, 0, 255)
    noise = np.random.default_rng(0).integers(0, 40, stored.shape, dtype=np.uint8)
    image = Image.fromarray(stored - np.minimum(stored, noise))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, quality=95, exif=exif.tobytes())


EXPECTED = {
    "empty.jpg": ("rejected", "empty file"),
    "truncated.jpg": ("rejected", "truncated or corrupt"),
    "page.jpg": ("rejected", "HTML"),
    "notes.txt": ("rejected", "not an image"),
    "tiny.png": ("rejected", "too small"),
    "bomb.png": ("rejected", "decompression bomb"),
    "cmyk.jpg": ("kept", ""),
    "palette.png": ("kept", ""),
    "la.png": ("kept", ""),
    "rgba.png": ("kept", ""),
    "animated.gif": ("kept", ""),
    "rotated.jpg": ("kept", ""),
    "nonsquare.png": ("kept", ""),
    # Same pixels in three files: the first in name order stays.
    "cover_a.bmp": ("kept", ""),
    "cover_a.png": ("duplicate", "exact duplicate of cover_a.bmp"),
    "sub/cover_a_copy.png": ("duplicate", "exact duplicate of cover_a.bmp"),
    "cover_b.png": ("kept", ""),
    "cover_b_small.jpg": ("duplicate", "near duplicate of cover_b.png"),
    "big.jpg": ("flagged", "aspect ratio 1.50"),
    "banner.png": ("flagged", "aspect ratio 3.00"),
    "flat.png": ("flagged", "near-flat"),
    "small.png": ("flagged", "small source 120x120"),
}


@pytest.fixture
def raw(tmp_path) -> Path:
    src = tmp_path / "raw"
    (src / "sub").mkdir(parents=True)
    (src / "empty.jpg").write_bytes(b"")
    buffer = io.BytesIO()
    _cover(1).save(buffer, "JPEG", quality=90)
    (src / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (src / "page.jpg").write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>")
    (src / "notes.txt").write_text("covers to look at later")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(src / "tiny.png")
    (src / "bomb.png").write_bytes(_bomb_png(30_000, 30_000))
    _cover(2).convert("CMYK").save(src / "cmyk.jpg", quality=92)
    palette = _cover(3).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    palette.save(src / "palette.png", transparency=0)
    _cover(4).convert("LA").save(src / "la.png")
    rgba = _cover(5).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.save(src / "rgba.png")
    frames = [_cover(6), _cover(7)]
    frames[0].save(src / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    _exif_rotated_jpeg(src / "rotated.jpg")
    _cover(8).resize((560, 500)).save(src / "nonsquare.png")
    _cover(9, 600).save(src / "cover_a.png")
    (src / "sub" / "cover_a_copy.png").write_bytes((src / "cover_a.png").read_bytes())
    _cover(9, 600).save(src / "cover_a.bmp")
    _cover(10, 600).save(src / "cover_b.png")
    _cover(10, 600).resize((300, 300), Image.Resampling.LANCZOS).save(
        src / "cover_b_small.jpg", quality=85
    )
    _cover(11, 2000).resize((3000, 2000)).save(src / "big.jpg", quality=90)
    _cover(12).resize((1200, 400)).save(src / "banner.png")
    Image.new("RGB", (400, 400), (200, 30, 90)).save(src / "flat.png")
    _cover(13, 120).save(src / "small.png")
    return src


def _manifest(out: Path) -> dict[str, dict]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    by_src = {r["src"]: r for r in records}
    assert len(by_src) == len(records)  # exactly one line per input file
    return by_src


def test_every_kind_of_input_gets_the_expected_status(raw, tmp_path):
    out = tmp_path / "prepared"
    summary = prepare(raw, out, size=64, workers=2)
    records = _manifest(out)
    assert set(records) == set(EXPECTED)
    for src, (status, reason) in EXPECTED.items():
        assert records[src]["status"] == status, (src, records[src])
        assert reason in records[src]["reason"], (src, records[src])
    assert summary.counts == {"kept": 9, "duplicate": 3, "flagged": 4, "rejected": 6}
    kept = sorted((out / "images").iterdir())
    assert len(kept) == 9 and {r["out"] for r in records.values() if r["status"] == "kept"} == {
        f"images/{p.name}" for p in kept
    }
    assert len(list((out / "flagged").iterdir())) == 4
    for path in kept:
        with Image.open(path) as image:
            assert image.size == (64, 64) and image.mode == "RGB"


def _pixels(out: Path, records: dict, src: str) -> np.ndarray:
    with Image.open(out / records[src]["out"]) as image:
        return np.asarray(image, np.int16)


def test_conversions_orientation_and_alpha(raw, tmp_path):
    out = tmp_path / "prepared"
    prepare(raw, out, size=64, workers=1)
    records = _manifest(out)
    rotated = _pixels(out, records, "rotated.jpg")  # displayed: red on top, blue below
    assert rotated[5, 32, 0] > 150 and rotated[5, 32, 2] < 80
    assert rotated[58, 32, 2] > 150 and rotated[58, 32, 0] < 80
    assert records["rotated.jpg"]["width"] == 450 and records["rotated.jpg"]["height"] == 500
    rgba = _pixels(out, records, "rgba.png")  # alpha 0 along the top: composited on white
    assert rgba[0].min() > 240 and rgba[-1].mean() < 230
    gif = _pixels(out, records, "animated.gif")  # first frame, not the second
    first = np.asarray(_cover(6).resize((64, 64), Image.Resampling.LANCZOS), np.int16)
    second = np.asarray(_cover(7).resize((64, 64), Image.Resampling.LANCZOS), np.int16)
    assert np.abs(gif - first).mean() < np.abs(gif - second).mean()


def test_rerun_is_idempotent(raw, tmp_path):
    out = tmp_path / "prepared"
    prepare(raw, out, size=64, workers=2)
    manifest = (out / "manifest.jsonl").read_bytes()
    files = {p.name: p.read_bytes() for p in (out / "images").iterdir()}
    prepare(raw, out, size=64, workers=2)
    assert (out / "manifest.jsonl").read_bytes() == manifest
    assert {p.name: p.read_bytes() for p in (out / "images").iterdir()} == files
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_exclude_confirm_and_exact_only_dedupe(raw, tmp_path):
    out = tmp_path / "prepared"
    records = None
    prepare(
        raw,
        out,
        size=64,
        dedupe_distance=0,
        exclude={"cmyk.jpg"},
        confirm={"banner.png"},
        workers=1,
    )
    records = _manifest(out)
    assert records["cmyk.jpg"]["status"] == "rejected"
    assert records["cmyk.jpg"]["reason"] == "excluded by --exclude"
    assert records["banner.png"]["status"] == "kept"
    assert records["banner.png"]["reason"].startswith("confirmed: aspect ratio")
    assert records["cover_b_small.jpg"]["status"] == "kept"  # near duplicate kept at distance 0
    assert records["cover_a.png"]["status"] == "duplicate"  # exact duplicates always collapse
    kept = {r["out"] for r in records.values() if r["status"] == "kept"}
    assert {f"images/{p.name}" for p in (out / "images").iterdir()} == kept


def test_review_page_escapes_names_and_links_existing_images(raw, tmp_path):
    _cover(20).resize((900, 300)).save(raw / "<img src=x onerror=alert(1)>.png")  # flagged
    out = tmp_path / "prepared"
    prepare(raw, out, size=64, workers=1)
    page = (out / "review.html").read_text()
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page

    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 5 and all((out / s).is_file() for s in sources)
    assert "http://" not in page and "https://" not in page


def test_cli_prints_a_summary_and_bad_arguments_exit_2(raw, tmp_path):
    out = tmp_path / "prepared"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "albumgan.experiments.cli",
            "data",
            "prepare",
            str(raw),
            "--out",
            str(out),
            "--size",
            "32",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"kept\s+9\n", proc.stdout) and re.search(r"total\s+22\n", proc.stdout)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "albumgan.experiments.cli",
            "data",
            "prepare",
            str(tmp_path / "nope"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "SRC must be a folder" in bad.stderr


def test_prepared_folder_trains_through_the_registry(raw, tmp_path, monkeypatch):
    from albumgan.data_tools.datasets import load_dataset

    monkeypatch.setenv("ALBUMGAN_DATA", str(tmp_path / "data"))
    prepare(raw, tmp_path / "data" / "crawled", size=64, workers=1)
    data = load_dataset("crawled", 16, tmp_path / "cache")
    assert data.images.shape == (9, 16, 16, 3) and data.name == "crawled"
    direct = load_dataset(str(tmp_path / "data" / "crawled"), 16, tmp_path / "cache")
    assert direct.images.shape == (9, 16, 16, 3)  # a prepared folder means its images/

    from albumgan import TrainConfig, train

    cfg = TrainConfig(
        dataset="crawled",
        data_dir=str(tmp_path / "data"),
        resolution=16,
        g_width=8,
        d_width=8,
        noise_shape=(16,),
        batch_size=4,
        steps=4,
        log_every=2,
        sample_every=0,
        checkpoint_every=0,
        precision="float32",
        runs_dir=str(tmp_path / "runs"),
        cache_dir=str(tmp_path / "cache"),
    )
    result = train(cfg)
    assert result.state == "completed" and result.step == 4
    status = json.loads((result.run_dir / "status.json").read_text())
    assert (status["dataset"], status["n_images"]) == ("crawled", 9)


def test_crawl_provenance_is_carried_into_the_prepared_manifest(tmp_path):
    """The crawler's manifest.jsonl beside raw files gives each prepared record its origin (the
    source mix of reports) and is not itself treated as an input image."""
    src = tmp_path / "raw" / "bing"
    src.mkdir(parents=True)
    _cover(1).save(src / "a.png")
    _cover(2).save(src / "b.png")
    crawl = {"file": "a.png", "engine": "bing", "keyword": "kpop album cover", "url": "u"}
    (src / "manifest.jsonl").write_text(json.dumps(crawl) + "\n")
    prepare(tmp_path / "raw", tmp_path / "out", workers=1)
    records = {
        r["src"]: r
        for r in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())
    }
    assert set(records) == {"bing/a.png", "bing/b.png"}
    assert records["bing/a.png"]["origin"] == {
        "engine": "bing",
        "keyword": "kpop album cover",
        "url": "u",
    }
    assert "origin" not in records["bing/b.png"]


# ------------------------------------------------------------------------------------------------
# --out is shared with its owner: prepare touches only what its own manifest says it wrote.
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def few(tmp_path) -> Path:
    """Three covers that are kept and one small source that is flagged."""
    src = tmp_path / "few"
    src.mkdir()
    for i in range(3):
        _cover(30 + i, 300).save(src / f"cover{i}.png")
    _cover(40, 120).save(src / "small.png")
    return src


def _run_prepare(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "albumgan.experiments.cli", "data", "prepare", str(src)]
    command += ["--out", str(out), "--size", "32", "--workers", "1", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def _outputs(records: dict, status: str) -> set[str]:
    return {r["out"] for r in records.values() if r["status"] == status}


def _listing(out: Path, folder: str) -> set[str]:
    return {f"{folder}/{p.name}" for p in (out / folder).iterdir()}


def test_out_equal_to_src_is_refused_and_nothing_is_touched(few, tmp_path):
    (few / "images").mkdir()
    _cover(50, 300).save(few / "images" / "my_photo.jpg", quality=90)
    before = _tree(few)
    link = tmp_path / "link"
    link.symlink_to(few)
    for out in (few, link):  # the same folder by name, and through a symlink
        proc = _run_prepare(few, out)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        (line,) = proc.stderr.splitlines()
        assert line.startswith("error: --out ") and "is the same folder as SRC" in line
        assert str(out) in line and str(few) in line
        assert _tree(few) == before  # my_photo.jpg byte-identical, no manifest/images written


def test_out_inside_src_and_src_inside_out_are_refused(few, tmp_path):
    before = _tree(tmp_path)
    inside = _run_prepare(few, few / "prepared")
    assert inside.returncode == 2
    (line,) = inside.stderr.splitlines()
    assert "is inside SRC" in line and str(few / "prepared") in line and str(few) in line
    outside = _run_prepare(few, tmp_path)
    assert outside.returncode == 2
    (line,) = outside.stderr.splitlines()
    assert "contains SRC" in line and str(tmp_path) in line and str(few) in line
    assert _tree(tmp_path) == before  # nothing was written, not even the --out folder


def test_files_prepare_did_not_write_survive_runs_and_are_not_trained_on(few, tmp_path):
    from albumgan.data_tools.datasets import load_dataset

    out = tmp_path / "out"
    (out / "images" / "sub").mkdir(parents=True)
    (out / "flagged").mkdir()
    _cover(51, 300).save(out / "images" / "holiday.jpg", quality=90)
    _cover(52, 64).save(out / "images" / "sub" / "keep.png")
    (out / "flagged" / "notes.txt").write_text("mine")
    theirs = _tree(out)
    for _ in range(2):  # the first run and an idempotent re-run
        proc = _run_prepare(few, out)
        assert proc.returncode == 0, proc.stderr
        assert re.search(r"kept\s+3\n", proc.stdout) and re.search(r"flagged\s+1\n", proc.stdout)
        (note,) = proc.stderr.splitlines()
        assert note.startswith("note: 3 files or folders in ") and "left alone" in note
        for name in ("images/holiday.jpg", "images/sub", "flagged/notes.txt"):
            assert name in note
        tree = _tree(out)
        assert {k: tree[k] for k in theirs} == theirs  # untouched, byte for byte
        records = _manifest(out)
        assert set(records) == {"cover0.png", "cover1.png", "cover2.png", "small.png"}
        kept, flagged = _outputs(records, "kept"), _outputs(records, "flagged")
        assert len(kept) == 3 and len(flagged) == 1
        assert _listing(out, "images") == kept | {"images/holiday.jpg", "images/sub"}
        assert _listing(out, "flagged") == flagged | {"flagged/notes.txt"}
    data = load_dataset(str(out), 16, tmp_path / "cache")
    assert data.images.shape == (3, 16, 16, 3)  # the manifest's kept images, not holiday.jpg


def test_outputs_prepare_no_longer_produces_are_still_removed(few, tmp_path):
    out = tmp_path / "out"
    assert _run_prepare(few, out).returncode == 0
    first = _manifest(out)
    first_manifest = (out / "manifest.jsonl").read_bytes()
    exclude, confirm = tmp_path / "exclude.txt", tmp_path / "confirm.txt"
    exclude.write_text("cover1.png\n")
    confirm.write_text("small.png\n")
    proc = _run_prepare(few, out, "--exclude", str(exclude), "--confirm", str(confirm))
    assert proc.returncode == 0 and proc.stderr == ""
    second = _manifest(out)
    assert second["cover1.png"]["status"] == "rejected" and second["small.png"]["status"] == "kept"
    # cover1's image is gone, small.png moved from flagged/ to images/, nothing is left over
    assert not (out / first["cover1.png"]["out"]).exists()
    assert not (out / first["small.png"]["out"]).exists()
    assert _listing(out, "images") == _outputs(second, "kept")
    assert _listing(out, "flagged") == set()
    proc = _run_prepare(few, out)  # back to the first run's result
    assert proc.returncode == 0 and proc.stderr == ""
    assert (out / "manifest.jsonl").read_bytes() == first_manifest
    assert _listing(out, "images") == _outputs(first, "kept")
    assert _listing(out, "flagged") == _outputs(first, "flagged")


def test_files_in_out_that_prepare_would_have_to_replace_are_refused(few, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    crawl = json.dumps({"file": "a.png", "engine": "bing"}) + "\n"
    (out / "manifest.jsonl").write_text(crawl)  # a crawl folder is no place for a dataset
    proc = _run_prepare(few, out)
    assert proc.returncode == 2 and "was not written by prepare" in proc.stderr
    assert (out / "manifest.jsonl").read_text() == crawl and not (out / "images").exists()

    (out / "manifest.jsonl").unlink()
    reference = tmp_path / "reference"
    assert _run_prepare(few, reference).returncode == 0
    records = _manifest(reference)
    taken = out / records["cover0.png"]["out"]  # someone's file under an output's name
    taken.parent.mkdir()
    taken.write_bytes(b"not prepare's")
    proc = _run_prepare(few, out)
    assert proc.returncode == 2 and str(taken) in proc.stderr
    assert taken.read_bytes() == b"not prepare's" and not (out / "manifest.jsonl").exists()
    # the same bytes prepare makes (a run killed before its manifest): taken over, no clash
    taken.write_bytes((reference / records["cover0.png"]["out"]).read_bytes())
    proc = _run_prepare(few, out)
    assert proc.returncode == 0 and proc.stderr == ""
    assert (out / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()


def _words(rng: np.random.Generator, n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join(
        "".join(letters[k] for k in rng.integers(0, 26, rng.integers(2, 9))) for _ in range(n)
    )


def _text_page(rng, side=800, paper=(255, 255, 255), ink=(20, 20, 20), size=14) -> Image.Image:
    page = Image.new("RGB", (side, side), paper)
    draw, font = ImageDraw.Draw(page), ImageFont.load_default(size=size)
    for y in range(40, side - 40, int(size * 1.5)):
        draw.text((40, y), _words(rng, 12), fill=ink, font=font)
    return page


def test_screenshots_and_text_pages_are_flagged_and_minimal_covers_kept(tmp_path):
    """What the flags are for (junk among crawled covers), and what they must leave alone: the
    real covers in the seed's set include one-colour covers with a small title, covers of
    200-300 px and scans 1.41 high."""
    rng = np.random.default_rng(0)
    src = tmp_path / "raw"
    src.mkdir()
    _text_page(rng).save(src / "page.png")
    photo = np.asarray(_text_page(rng, paper=(236, 230, 214), ink=(40, 38, 35), size=16), float)
    photo = photo * np.linspace(0.8, 1.0, 800)[None, :, None] + rng.normal(0, 6, photo.shape)
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(0.8)
    ).save(src / "photo_of_page.jpg", quality=85)
    screen = Image.new("RGB", (900, 900), (246, 246, 248))
    draw, font = ImageDraw.Draw(screen), ImageFont.load_default(size=15)
    draw.rectangle([0, 0, 900, 40], fill=(60, 64, 72))
    draw.rectangle([0, 40, 200, 900], fill=(230, 232, 236))
    for i in range(25):
        draw.text((20, 60 + i * 32), _words(rng, 2), fill=(30, 30, 30), font=font)
        draw.text((230, 60 + i * 32), _words(rng, 9), fill=(30, 30, 30), font=font)
    screen.save(src / "screenshot.png")
    _text_page(rng).resize((750, 1334)).save(src / "phone.png")
    Image.new("RGB", (500, 500), (204, 204, 204)).save(src / "placeholder.png")
    _cover(20, 100).save(src / "thumbnail.png")
    # Covers: one colour and a title; white with a few lines of credits; small; a tall scan.
    minimal = Image.new("RGB", (600, 600), (236, 170, 190))
    title = ImageFont.load_default(size=56)
    ImageDraw.Draw(minimal).text((170, 270), "PERSONA", fill=(40, 40, 40), font=title)
    minimal.save(src / "minimal.jpg", quality=92)
    credits = Image.new("RGB", (600, 600), (250, 250, 250))
    draw = ImageDraw.Draw(credits)
    draw.ellipse([150, 100, 450, 400], fill=(20, 20, 20))
    for i in range(3):
        draw.text((200, 450 + i * 30), _words(rng, 3), fill=(30, 30, 30), font=font)
    credits.save(src / "credits.png")
    _cover(21, 243).save(src / "small_cover.png")
    _cover(22, 300).resize((214, 300)).save(src / "tall_scan.jpg", quality=90)
    prepare(src, tmp_path / "out", workers=1)
    records = _manifest(tmp_path / "out")
    expected = {
        "page.png": "screenshot/text page",
        "photo_of_page.jpg": "screenshot/text page",
        "screenshot.png": "screenshot/text page",
        "phone.png": "aspect ratio 1.78",
        "placeholder.png": "near-flat",
        "thumbnail.png": "small source 100x100",
    }
    for name, reason in expected.items():
        assert records[name]["status"] == "flagged" and reason in records[name]["reason"], name
    for name in ("minimal.jpg", "credits.png", "small_cover.png", "tall_scan.jpg"):
        assert (records[name]["status"], records[name]["reason"]) == ("kept", ""), records[name]
    # --keep-flagged keeps them all, each with its reason.
    kept = prepare(src, tmp_path / "all", workers=1, keep_flagged=True)
    assert kept.counts == {"kept": len(records)}
    thumb = _manifest(tmp_path / "all")["thumbnail.png"]
    assert thumb["reason"] == "kept by --keep-flagged: small source 100x100 (< 128 px)"


def test_several_sources_make_one_dataset(tmp_path):
    for folder, covers in (("girls", (30, 31)), ("boys", (32, 30)), ("more/boys", (33,))):
        (tmp_path / folder).mkdir(parents=True)
        for i in covers:
            _cover(i).save(tmp_path / folder / f"cover{i}.png")
    sources = [tmp_path / "girls", tmp_path / "boys", tmp_path / "more" / "boys"]
    summary = prepare(sources, tmp_path / "out", workers=1)
    records = _manifest(tmp_path / "out")
    assert sorted(records) == [
        "boys-2/cover33.png", "boys/cover30.png", "boys/cover32.png",
        "girls/cover30.png", "girls/cover31.png",
    ]  # fmt: skip
    assert records["girls/cover30.png"]["status"] == "kept"  # duplicates found across sources
    assert records["boys/cover30.png"]["reason"] == "exact duplicate of girls/cover30.png"
    assert summary.counts == {"kept": 4, "duplicate": 1}


def test_odd_names_huge_files_and_16_bit_images(tmp_path, capsys):
    """A name that is not UTF-8 is reported, never fatal; a file over the size cap is refused
    unread; a 16-bit PNG is scaled to 8 bits, not clipped to white."""
    from albumgan.data_tools.prepare import MAX_INPUT_BYTES

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        _cover(i).save(src / f"cover{i}.png")
    odd = Path(os.fsdecode(bytes(src) + b"/odd\xff\xfename.png"))
    _cover(7).save(odd, format="PNG")
    with (src / "big.jpg").open("wb") as handle:  # sparse: no disk used, no byte written
        handle.truncate(MAX_INPUT_BYTES + 1)
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (256, 1))  # dark to light
    Image.fromarray(ramp).save(src / "deep.png")  # mode I;16: a 16-bit grayscale PNG
    summary = prepare(src, tmp_path / "out", size=64, min_source=0, workers=1)
    assert (
        "its name is not UTF-8; recorded as 'odd\\\\xff\\\\xfename.png'" in capsys.readouterr().err
    )
    records = _manifest(tmp_path / "out")
    assert records["odd\\xff\\xfename.png"]["status"] == "kept"
    assert "over the 64 MB cap (not decoded)" in records["big.jpg"]["reason"]
    assert summary.counts["kept"] == 5
    deep = _pixels(tmp_path / "out", records, "deep.png")
    assert deep.min() < 10 and deep.max() > 245 and 100 < deep.mean() < 155, deep.mean()
