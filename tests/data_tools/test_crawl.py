"""The crawler for real: our Bing parser, icrawler's URL-list crawler and our downloader against a
local HTTP server on 127.0.0.1 serving generated covers, failures and Bing result pages.

``fixtures/bing_async.html`` has the shape of a real Bing ``/images/async`` answer (HTML-escaped
JSON in each result's ``m`` attribute); the server rewrites its image hosts to itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from PIL import Image

from albumgan.data_tools import cli
from albumgan.data_tools.crawl import (
    BingJsonParser,
    CrawlError,
    crawl,
    parse_engine_urls,
    report,
)
from albumgan.data_tools.synthetic import generate_cover

GOOD = ["/img/0.jpg", "/img/1.jpg", "/img/2.jpg", "/flaky.jpg"]
BAD = ["/missing.jpg", "/slow.jpg", "/page.jpg", "/small.jpg", "/dup.jpg"]

BING_PAGE = Path(__file__).parent / "fixtures" / "bing_async.html"
# What bing_async.html must yield, in page order (entities decoded), and the format each serves.
BING_FULL_SIZE = {
    # no extension at all
    "https://mblogthumb-phinf.pstatic.net/MjAyMjEwMDVfMTk0/MDAxNjY0OTUx_pY3c0Ew9g.QmFyNjY0"
    "_png_3442_2972_201696/0": "PNG",
    "https://upload.wikimedia.org/wikipedia/en/5/5e/Born_Pink_Digital.png": "PNG",
    "https://images.genius.com/3f9d2c71b0e5a84d6c11.1000x1000x1.webp": "WEBP",
    # "&amp;" in the page; the query string is part of the URL
    "https://image.bugsm.co.kr/album/images/1000/40812/4081234.jpg"
    "?version=20221108002103.0&size=1000": "JPEG",
    # followed by "t":"... cover.jpg", which icrawler's regex glues onto it
    "https://kprofiles.com/wp-content/uploads/2022/08/twice-between-1-and-2.png": "PNG",
}
BING_THUMBNAIL = "https://tse2.mm.bing.net/th?id=OIP.Wn6cDy2qLm8Rt5Ve&pid=15.1"  # no murl
BING_FULL_SIZE_AFTER = {
    "https://static.wikia.nocookie.net/kpop/images/7/7c/BTS_Proof_cover.jpeg/revision/latest"
    "?cb=20220610": "JPEG",
    # an older div.imgpt card, its <a> without class iusc
    "https://image.genie.co.kr/Y/IMAGE/IMG_ALBUM/081/234/567/81234567_1650000000000_1_600x600"
    ".JPG": "JPEG",
    # m escaped twice (&amp;quot;)
    "https://cdnimg.melon.co.kr/cm2/album/images/111/07/654/11107654_20221017161111_500.jpg"
    "?8b1e": "JPEG",
}
BING_BROKEN = "https://www.example-fansite.kr/files/seventeen-face-the-sun.jpg"  # m cut short
BING_EXPECTED = (
    [{"file_url": url} for url in BING_FULL_SIZE]
    + [{"file_url": BING_THUMBNAIL, "thumbnail": True}]
    + [{"file_url": url} for url in BING_FULL_SIZE_AFTER]
)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _parse(page: bytes) -> list[dict]:
    parser = BingJsonParser(thread_num=1, signal=None, session=None)
    return list(parser.parse(SimpleNamespace(content=page)))


class _Server:
    """Serves covers, a 404, a slow answer, HTML, a tiny image, a duplicate, a flaky 503."""

    def __init__(self) -> None:
        covers = {f"/img/{i}.jpg": _jpeg(generate_cover(i, size=400, seed=5)) for i in range(3)}
        covers["/flaky.jpg"] = _jpeg(generate_cover(9, size=400, seed=5))
        covers["/dup.jpg"] = covers["/img/0.jpg"]
        covers["/small.jpg"] = _jpeg(generate_cover(4, size=100, seed=5))
        self.files = covers
        self.kinds = {path: "image/jpeg" for path in covers}
        self.hits: dict[str, int] = {}
        self.requests: list[str] = []  # full paths, query strings included
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                server.requests.append(self.path)
                if path == "/bing":
                    body = server.result_page(self.path).encode()
                    return self._send(200, body, "text/html")
                if path == "/images/async":
                    return self._send(200, server.bing_page(self.path), "text/html; charset=utf-8")
                if path == "/slow.jpg":
                    time.sleep(2.5)
                if path == "/drip.jpg":  # a byte every 0.2 s: the read timeout never trips
                    return self._drip()
                if path == "/huge.jpg":  # says 2 GB; sends 3 MB, then stalls
                    return self._huge()
                if path == "/flaky.jpg" and server.hits[path] == 1:
                    return self._send(503, b"busy", "text/plain")
                if path == "/page.jpg":
                    return self._send(200, b"<html><body>captcha</body></html>", "text/html")
                if path in server.files:
                    return self._send(200, server.files[path], server.kinds[path])
                self._send(404, b"not found", "text/plain")

            def _drip(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                try:
                    for _ in range(1000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _huge(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                undeclared = "nolength" in self.path
                if not undeclared:
                    self.send_header("Content-Length", str(2 * 2**30))
                self.end_headers()
                try:
                    for _ in range(3):
                        self.wfile.write(b"\0" * 2**20)
                    time.sleep(1)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        full_size = {**BING_FULL_SIZE, **BING_FULL_SIZE_AFTER}
        for index, (url, fmt) in enumerate(full_size.items()):
            self._serve(url, _encode(generate_cover(index, size=320, seed=11), fmt), fmt)
        self._serve(BING_THUMBNAIL, _jpeg(generate_cover(20, size=160, seed=11)), "JPEG")

    def local(self, url: str) -> str:
        """Where this server serves an image the page names on another host."""
        return re.sub(r"https://([a-z0-9.-]+)/", self.base + r"/ext/\1/", url)

    def _serve(self, url: str, body: bytes, fmt: str) -> None:
        path = urlsplit(self.local(url)).path
        self.files[path], self.kinds[path] = body, f"image/{fmt.lower()}"

    def bing_page(self, request: str) -> bytes:
        """bing_async.html with its hosts pointed here on the first page; no results after."""
        if not re.search(r"first=0(&|$)", request):
            return b'<ul class="dgControl_list"></ul>'
        return self.local(BING_PAGE.read_text(encoding="utf-8")).encode()

    def result_page(self, request: str) -> str:
        """A saved-style Bing result page: div.imgpt > a[m] with "murl" (first page only)."""
        if not re.search(r"first=0(&|$)", request) or "empty=1" in request:
            return "<html><body></body></html>"
        cards = "".join(
            f'<div class="imgpt"><a class="iusc" m=\'{{"murl":"{self.base}{p}",'
            f'"turl":"{self.base}/thumb.jpg"}}\'></a></div>'
            for p in GOOD + BAD
        )
        return f"<html><body><div id='mmComponent_images_1'>{cards}</div></body></html>"


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.httpd.shutdown()


def _crawl(server, out, **kwargs):
    bing = server.base + "/bing?q={keyword}&first={offset}"
    return crawl(
        out,
        engines=("bing",),
        keywords=("kpop album cover",),
        max_num=20,
        min_size=300,
        engine_urls={"bing": bing},
        queue_timeout=0.5,
        request_timeout=1.0,
        backoff=0.05,
        **{"allow_local": True, **kwargs},  # every result URL here is on 127.0.0.1
    )


def test_bing_crawl_keeps_good_images_with_provenance_and_counts_failures(server, tmp_path):
    out = tmp_path / "raw"
    (result,) = _crawl(server, out)
    assert result.new_files == len(GOOD)
    assert result.skipped == {
        "HTTP 404": 1,
        "timeout": 1,
        "not an image": 1,
        "smaller than 300 px": 1,
        "same image already stored": 1,
    }
    assert server.hits["/flaky.jpg"] == 2  # a 503 is retried
    assert server.hits["/slow.jpg"] == 3  # timeouts are retried (3 tries)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    files = sorted(p.name for p in out.iterdir() if p.name != "manifest.jsonl")
    assert sorted(r["file"] for r in records) == files and len(files) == len(GOOD)
    assert {r["url"] for r in records} == {server.base + p for p in GOOD}
    for record in records:
        data = (out / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert re.fullmatch(r"[0-9a-f]{20}\.jpg", record["file"])  # names never come from URLs
        assert (record["engine"], record["keyword"]) == ("bing", "kpop album cover")
        assert (record["width"], record["height"], record["format"]) == (400, 400, "JPEG")
    assert "returned nothing" not in report([result])


def test_recrawl_adds_nothing_twice(server, tmp_path):
    out = tmp_path / "raw"
    _crawl(server, out)
    manifest = (out / "manifest.jsonl").read_text()
    (again,) = _crawl(server, out)
    assert again.new_files == 0
    assert again.skipped["url already crawled"] == len(GOOD)
    assert (out / "manifest.jsonl").read_text() == manifest
    assert "returned nothing: bing: kpop album cover" in report([again])


def test_url_list_crawler_and_a_keyword_that_returns_nothing(server, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"# covers found by hand\n{server.base}/img/1.jpg\n{server.base}/missing.jpg\n"
    )
    out = tmp_path / "raw"
    bing_empty = server.base + "/bing?q={keyword}&first={offset}&empty=1"  # a page with no cards
    results = crawl(
        out,
        engines=("bing",),
        keywords=("nothing here",),
        max_num=20,
        min_size=300,
        urls_file=urls,
        engine_urls={"bing": bing_empty},
        queue_timeout=0.5,
        request_timeout=1.0,
        allow_local=True,
    )
    by_engine = {r.engine: r for r in results}
    assert by_engine["bing"].new_files == 0 and by_engine["urls"].new_files == 1
    assert by_engine["urls"].skipped == {"HTTP 404": 1}
    assert "returned nothing: bing: nothing here" in report(results)


def test_downloads_have_a_deadline_a_size_cap_and_skip_local_addresses(server, tmp_path):
    urls = tmp_path / "urls.txt"
    good = f"{server.base}{GOOD[0]}"
    urls.write_text(
        f"{server.base}/drip.jpg\n{server.base}/huge.jpg\n{server.base}/huge.jpg?nolength\n{good}\n"
    )
    common = {"engines": (), "keywords": (), "urls_file": urls, "min_size": 300}
    start = time.monotonic()
    (result,) = crawl(
        tmp_path / "raw", **common, allow_local=True, file_deadline=1.0,
        max_file_bytes=2 * 2**20, request_timeout=5.0,
    )  # fmt: skip
    assert time.monotonic() - start < 20  # a host dripping bytes would otherwise take 200 s
    assert result.new_files == 1, result.skipped
    assert result.skipped == {"over the 1 s deadline": 1, "over the 2 MB cap": 2}
    # Result URLs on this machine (or its LAN) are not fetched without --allow-local.
    (local,) = crawl(tmp_path / "raw2", **common)
    assert local.new_files == 0 and local.skipped == {
        "a local or private address (allow_local / --allow-local)": 4
    }
    assert not server.hits.get(GOOD[0].split("?")[0], 0) > 1  # fetched once, by the first crawl


def test_offline_is_a_clear_error(tmp_path):
    closed = "http://127.0.0.1:9/bing?q={keyword}&first={offset}"  # the discard port: refused
    with pytest.raises(CrawlError, match="no search engine could be reached"):
        crawl(
            tmp_path / "raw",
            engines=("bing",),
            keywords=("x",),
            engine_urls={"bing": closed},
            request_timeout=1.0,
        )
    assert not (tmp_path / "raw" / "manifest.jsonl").exists()


def test_bing_parser_reads_each_result_json_whatever_the_extension():
    assert _parse(BING_PAGE.read_bytes()) == BING_EXPECTED


def test_bing_parser_skips_what_is_not_a_usable_result():
    page = (
        "<div class='imgpt'>"
        "<a class='iusc' m='[1, 2]'></a>"  # JSON, not an object
        "<a class='iusc' m=''></a>"
        '<a class=\'iusc\' m=\'{"murl": 42, "turl": "https://t.example/th?id=1"}\'></a>'
        '<a class=\'iusc\' m=\'{"murl": "", "turl": ""}\'></a>'  # nothing usable
        "<a class='iusc' m='{\"murl\": \"javascript:alert(1)\"}'></a>"
        "</div>"
        "<a class='iusc'>no m</a>"
        "<a class='related' m='{\"murl\": \"https://x.example/not-a-result.jpg\"}'></a>"
        "<a class='iusc' m='{\"murl\": \" https://x.example/a cover.png \"}'></a>"
    )
    assert _parse(page.encode()) == [
        {"file_url": "https://t.example/th?id=1", "thumbnail": True},
        {"file_url": "https://x.example/a cover.png"},
    ]


@pytest.mark.parametrize("min_size", [100, 300])
def test_cli_crawls_a_bing_result_page_end_to_end(server, tmp_path, capsys, min_size):
    """`albumgan data crawl --engine-url ...`: full-size images of every kind, with provenance;
    the thumbnail fallback is flagged when kept and counted when --min-size rejects it."""
    out = tmp_path / "raw"
    template = server.base + "/images/async?q={keyword}&first={offset}&count=35&mmasync=1"
    argv = ["crawl", "--out", str(out), "--keyword", "kpop album cover", "--max-num", "20"]
    code = cli.main(
        [*argv, "--min-size", str(min_size), "--engine-url", template, "--allow-local"]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert "/images/async?q=kpop+album+cover&first=0&count=35&mmasync=1" in server.requests
    full_size = {server.local(u): f for u, f in {**BING_FULL_SIZE, **BING_FULL_SIZE_AFTER}.items()}
    thumbnail = server.local(BING_THUMBNAIL)
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    by_url = {r["url"]: r for r in records}
    kept_thumbnail = min_size <= 160
    assert set(by_url) == set(full_size) | ({thumbnail} if kept_thumbnail else set())
    assert len(records) == len(by_url)
    for url, fmt in full_size.items():
        record = by_url[url]
        assert "thumbnail" not in record  # full-size lines are unchanged
        assert (record["format"], record["width"], record["height"]) == (fmt, 320, 320)
        data = (out / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert record["file"].endswith({"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[fmt])
        assert (record["engine"], record["keyword"]) == ("bing", "kpop album cover")
    # query strings reach the image host as the page gave them (the page had "&amp;")
    assert (
        "/ext/image.bugsm.co.kr/album/images/1000/40812/4081234.jpg"
        "?version=20221108002103.0&size=1000" in server.requests
    )
    assert urlsplit(server.local(BING_BROKEN)).path not in server.hits  # broken m: skipped
    if kept_thumbnail:
        assert by_url[thumbnail]["thumbnail"] is True
        assert by_url[thumbnail]["width"] == 160
        assert f"bing        {len(full_size) + 1}  kpop album cover" in stdout
    else:
        assert server.hits[urlsplit(thumbnail).path] == 1  # fetched, measured, rejected
        assert f"bing        {len(full_size)}  kpop album cover" in stdout
        assert "[thumbnail smaller than 300 px: 1]" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(r["file"] for r in records), "manifest.jsonl"]
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--engine-url", "http://127.0.0.1:9/s?first={offset}"], "must contain {keyword}"),
        (["--engine-url", "bing=http://127.0.0.1:9/s?first={offset}"], "must contain {keyword}"),
        (["--engine-url", "http://127.0.0.1:9/s?q={keyword}&p={page}"], "placeholder {page}"),
        (["--engine-url", "http://127.0.0.1:9/s?q={keyword"], "malformed"),
        (["--engine-url", "127.0.0.1:9/s?q={keyword}"], "http:// or https://"),
        (["--engine-url", "yahoo=http://127.0.0.1:9/s?q={keyword}"], "unknown engine 'yahoo'"),
        (["--engine-url", "google=http://127.0.0.1:9/s?q={keyword}"], "not crawled"),
        (
            ["--engine", "bing", "--engine", "google", "--engine-url", "http://h/s?q={keyword}"],
            "no NAME= prefix but 2 engines",
        ),
        (
            [
                "--engine-url",
                "http://h/a?q={keyword}",
                "--engine-url",
                "bing=http://h/b?q={keyword}",
            ],
            "given twice for bing",
        ),
    ],
)
def test_engine_url_errors_exit_2_with_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "raw"
    assert cli.main(["crawl", "--out", str(out), "--keyword", "x", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not out.exists()  # refused before anything was fetched or written


def test_engine_url_names_and_bare_templates(tmp_path):
    bing, google = "http://h/b?q={keyword}&first={offset}", "http://h/g?q={keyword}&ijn={page}"
    assert parse_engine_urls([bing], ("bing",)) == {"bing": bing}
    assert parse_engine_urls([google], ("google", "google")) == {"google": google}
    both = parse_engine_urls([f"google={google}", f"bing={bing}"], ("bing", "google"))
    assert both == {"bing": bing, "google": google}
    assert parse_engine_urls([], ("bing", "google")) == {}
    with pytest.raises(ValueError, match="must contain"):
        crawl(tmp_path / "raw", engine_urls={"bing": "http://h/b"})  # the library checks too
