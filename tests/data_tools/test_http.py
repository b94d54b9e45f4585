"""The one HTTP client (``data_tools.http``) against a real server on 127.0.0.1 that answers 503
(with ``Retry-After``) before 200, or 503 for ever: the session on its own, then the crawl and
the Gaon fetcher through it, retrying and succeeding, or giving up with one clear line after
the configured number of attempts. Also: the wait between two requests to one host."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from albumgan.data_tools import cli
from albumgan.data_tools.crawl import crawl, report
from albumgan.data_tools.gaon import CoverFetcher, fetch_covers
from albumgan.data_tools.http import HostPacer, PoliteSession
from albumgan.data_tools.synthetic import generate_cover
from albumgan.gan_core.contract import EXIT_FAILED

BUSY = (503, {"Retry-After": "0"}, b"busy")  # Retry-After 0: retried at once, tests stay fast
CHART = "year,rank,artist,album,sales,source,note,artist_alias\n2022,1,BTS,Proof,,wiki,,\n"


def _jpeg(seed: int, size: int = 400) -> tuple[int, dict, bytes]:
    buffer = io.BytesIO()
    generate_cover(seed, size=size, seed=5).save(buffer, "JPEG")
    return 200, {"Content-Type": "image/jpeg"}, buffer.getvalue()


class _Scripted:
    """Answers each path from its script: the answers in turn, the last one for ever after
    (``"slow"``: no answer for 0.6 s, then 200). Records when each request came, per path,
    and the User-Agent it came with."""

    def __init__(self, routes: dict[str, list]) -> None:
        self.routes = routes
        self.times: dict[str, list[float]] = {}
        self.agents: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:  # what crawl's reachable() asks
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server.lock:
                    seen = server.times.setdefault(path, [])
                    seen.append(time.monotonic())
                    agent = self.headers.get("User-Agent", "")
                    server.agents.setdefault(path, set()).add(agent)
                    script = server.routes.get(path, [(404, {}, b"not found")])
                    answer = script[min(len(seen), len(script)) - 1]
                if answer == "slow":
                    time.sleep(0.6)
                    answer = (200, {}, b"late")
                code, headers, body = answer
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_port}"
        self.base = f"http://{self.host}"
        serve = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def hits(self, path: str) -> int:
        return len(self.times.get(path, []))


@pytest.fixture
def serve():
    servers = []

    def start(routes: dict[str, list]) -> _Scripted:
        servers.append(_Scripted(routes))
        return servers[-1]

    yield start
    for server in servers:
        server.httpd.shutdown()


# -- the session ---------------------------------------------------------------------------------


def test_a_503_is_retried_after_its_retry_after_then_succeeds(serve):
    server = serve({"/x": [(503, {"Retry-After": "1"}, b"busy"), (200, {}, b"ok")]})
    response = PoliteSession(attempts=3, backoff=0).get(server.base + "/x")
    assert (response.status_code, response.text) == (200, "ok")
    first, second = server.times["/x"]
    assert second - first >= 0.9  # the server asked for 1 s
    assert response.request.headers["User-Agent"].startswith("albumgan/")


def test_a_long_retry_after_is_capped(serve):
    server = serve({"/x": [(503, {"Retry-After": "30"}, b"busy"), (200, {}, b"ok")]})
    start = time.monotonic()
    response = PoliteSession(backoff=0, max_retry_after=0.2).get(server.base + "/x")
    assert response.status_code == 200 and server.hits("/x") == 2
    assert 0.15 <= time.monotonic() - start < 5


@pytest.mark.parametrize("attempts", [1, 2, 4])
def test_the_session_gives_up_after_the_configured_attempts(serve, attempts):
    server = serve({"/x": [BUSY]})
    session = PoliteSession(attempts=attempts, backoff=0)
    with pytest.raises(requests.RequestException) as caught:
        session.get(server.base + "/x")
    assert server.hits("/x") == attempts
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    assert session.explain(caught.value) == f"gave up on {server.host} after {tries} (HTTP 503)"
    assert session.reason(caught.value) == f"HTTP 503 after {tries}"


def test_a_404_is_an_answer_not_retried(serve):
    server = serve({})
    assert PoliteSession(backoff=0).get(server.base + "/gone").status_code == 404
    assert server.hits("/gone") == 1


def test_timeouts_and_a_closed_port_say_what_happened(serve):
    server = serve({"/slow": ["slow"]})
    session = PoliteSession(attempts=2, backoff=0, timeout=0.2)
    with pytest.raises(requests.RequestException) as caught:
        session.get(server.base + "/slow")  # the session's timeout: none given here
    assert server.hits("/slow") == 2
    assert session.reason(caught.value) == "timeout"
    assert session.explain(caught.value) == f"gave up on {server.host} after 2 attempts (timeout)"
    with pytest.raises(requests.RequestException) as caught:
        session.get("http://127.0.0.1:9/x")  # the discard port: refused
    assert session.explain(caught.value) == "cannot reach 127.0.0.1:9 after 2 attempts (offline?)"
    assert session.reason(caught.value) == "network error (cannot connect)"


def test_two_requests_to_one_host_are_an_interval_apart(serve):
    server = serve({"/x": [(200, {}, b"ok")]})
    session = PoliteSession(intervals={server.host: 0.3})
    start = time.monotonic()
    session.get(server.base + "/x")
    session.get(server.base + "/x")
    assert 0.3 <= time.monotonic() - start < 5
    first, second = server.times["/x"]
    assert second - first >= 0.25
    # Threads share the pacing: three requests at once still arrive one interval apart.
    threads = [threading.Thread(target=session.get, args=(server.base + "/x",)) for _ in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrived = server.times["/x"][2:]
    assert len(arrived) == 3 and all(b - a >= 0.25 for a, b in zip(arrived, arrived[1:]))


def test_the_pacer_waits_per_host():
    pacer = HostPacer({"a.example": 0.3}, default=0.0)
    assert pacer.wait("a.example") == 0.0  # the first request goes at once
    assert pacer.wait("b.example") == 0.0  # another host does not wait for a.example
    start = time.monotonic()
    assert pacer.wait("a.example") > 0.2
    assert time.monotonic() - start >= 0.2


# -- the crawl through it ------------------------------------------------------------------------


def test_crawl_retries_a_503_and_counts_what_it_gave_up_on(serve, tmp_path):
    server = serve({"/flaky.jpg": [BUSY, _jpeg(1)], "/down.jpg": [BUSY], "/busy": [BUSY]})
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{server.base}/flaky.jpg\n{server.base}/down.jpg\n")
    out = tmp_path / "raw"
    busy, listed = crawl(
        out, engines=("bing",), keywords=("busy",), urls_file=urls, max_num=20, min_size=300,
        engine_urls={"bing": server.base + "/{keyword}?first={offset}"},  # /busy: always 503
        queue_timeout=0.5, request_timeout=2.0, attempts=2, backoff=0, allow_local=True,
    )  # fmt: skip
    assert listed.new_files == 1 and listed.skipped == {"HTTP 503 after 2 attempts": 1}
    assert busy.new_files == 0 and busy.skipped == {"result page HTTP 503 after 2 attempts": 1}
    assert [server.hits(p) for p in ("/flaky.jpg", "/down.jpg", "/busy")] == [2, 2, 2]
    (record,) = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert record["url"] == f"{server.base}/flaky.jpg" and record["width"] == 400
    table = report([busy, listed])
    assert "busy  [returned nothing; result page HTTP 503 after 2 attempts: 1]" in table
    assert "urls.txt  [HTTP 503 after 2 attempts: 1]" in table


def test_the_crawl_command_retries_and_says_what_it_gave_up_on(serve, tmp_path, capsys):
    """`albumgan data crawl` (3 attempts by default): a result page busy twice, then two cards:
    an image busy once, one busy for ever."""
    server = serve({"/flaky.jpg": [BUSY, _jpeg(2)], "/down.jpg": [BUSY]})
    cards = "".join(
        f'<div class="imgpt"><a class="iusc" m=\'{{"murl":"{server.base}{path}"}}\'></a></div>'
        for path in ("/flaky.jpg", "/down.jpg")
    )
    server.routes["/k"] = [BUSY, BUSY, (200, {}, f"<html><body>{cards}</body></html>".encode())]
    out = tmp_path / "raw"
    argv = ["crawl", "--out", str(out), "--keyword", "k", "--max-num", "5", "--min-size", "300"]
    argv.append("--allow-local")  # the result URLs are on 127.0.0.1
    code = cli.main([*argv, "--engine-url", server.base + "/{keyword}?first={offset}"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert [server.hits(p) for p in ("/k", "/flaky.jpg", "/down.jpg")] == [3, 2, 3]
    assert "bing        1  k  [HTTP 503 after 3 attempts: 1]\n" in stdout
    # The engine's page is asked for as a browser would (its markup is for browsers), the
    # files with albumgan's name.
    ((page_agent,), (file_agent,)) = server.agents["/k"], server.agents["/flaky.jpg"]
    assert page_agent.startswith("Mozilla/5.0") and file_agent.startswith("albumgan/")
    (record,) = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert record["url"] == f"{server.base}/flaky.jpg"


# -- the Gaon fetcher through it -----------------------------------------------------------------


def _itunes(server: _Scripted) -> tuple[int, dict, bytes]:
    hit = {
        "artistName": "BTS",
        "collectionName": "Proof",
        "artworkUrl100": f"{server.base}/art/100x100bb.jpg",
    }
    return 200, {"Content-Type": "text/javascript"}, json.dumps({"results": [hit]}).encode()


def _chart(tmp_path):
    path = tmp_path / "chart.csv"
    path.write_text(CHART, encoding="utf-8")
    return path


def test_gaon_retries_503s_and_fetches_the_cover(serve, tmp_path):
    server = serve({"/art/1200x1200bb.jpg": [BUSY, _jpeg(3)]})
    server.routes["/it/search"] = [BUSY, (502, {}, b"bad gateway"), _itunes(server)]
    fetcher = CoverFetcher(urls={"itunes": server.base + "/it"}, backoff=0)
    result = fetch_covers(tmp_path / "g", _chart(tmp_path), ("itunes",), fetcher, min_size=300)
    assert result.served == {"itunes": 1} and not result.missing
    assert (server.hits("/it/search"), server.hits("/art/1200x1200bb.jpg")) == (3, 2)
    (record,) = [json.loads(line) for line in (tmp_path / "g" / "manifest.jsonl").open()]
    assert record["url"] == f"{server.base}/art/1200x1200bb.jpg" and record["width"] == 400


def test_the_gaon_command_gives_up_on_a_busy_service_with_one_line(serve, tmp_path, capsys):
    server = serve({"/it/search": [BUSY]})
    argv = ["gaon", "--out", str(tmp_path / "g"), "--chart", str(_chart(tmp_path))]
    code = cli.main([*argv, "--source", "itunes", "--source-url", f"itunes={server.base}/it"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert err == f"error: gave up on {server.host} after 3 attempts (HTTP 503)\n"
    assert server.hits("/it/search") == 3


def test_an_image_gaon_gives_up_on_is_the_albums_problem(serve, tmp_path):
    server = serve({"/art/1200x1200bb.jpg": [BUSY]})
    server.routes["/it/search"] = [_itunes(server)]
    fetcher = CoverFetcher(urls={"itunes": server.base + "/it"}, attempts=2, backoff=0)
    result = fetch_covers(tmp_path / "g", _chart(tmp_path), ("itunes",), fetcher, min_size=300)
    ((album, said),) = result.missing.items()
    assert album.album == "Proof" and server.hits("/art/1200x1200bb.jpg") == 2
    problem = "no image (HTTP 503 after 2 attempts for 1200x1200)"
    assert said == [f"itunes: matched BTS - Proof (1.00), but {problem}"]
