"""Run, sweep and compare reports from real runs and a real study: structure, self-containment,
escaping, states and the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from albumgan.gan_core.rundir import RunLock
from albumgan.reports.compare_report import compare_report
from albumgan.reports.render import MANIFEST
from albumgan.reports.run_report import run_report
from albumgan.reports.sweep_report import sweep_report

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ("file:", "data:")  # the only URL schemes a report may load


class _Refs(HTMLParser):
    """Every src/href attribute and every h2 heading of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, name, value))
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2 and data.strip():
            self.headings.append(data.strip())


def parse(index: Path) -> _Refs:
    refs = _Refs()
    refs.feed(index.read_text(encoding="utf-8"))
    return refs


def assert_self_contained(index: Path) -> None:
    """Every src/href is a data: URI or a relative path to an existing file; no remote
    resource anywhere, in the HTML or the Markdown beside it."""
    html_text = index.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html_text)
    assert "url(http" not in html_text and "@import" not in html_text
    refs = parse(index).refs
    assert refs, "a report without a single picture"
    for tag, _, value in refs:
        if value.startswith("data:"):
            continue
        target = (index.parent / value.split("#")[0]).resolve()
        assert target.is_file(), f"<{tag}> {value} -> {target} does not exist"
    markdown = index.with_name("report.md")
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown.read_text(encoding="utf-8")):
        assert not target.startswith(("http:", "https:", "//")), target
        assert (index.parent / target).is_file(), f"report.md links {target}, which is missing"


def copy_run(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("report"))
    return dest


def test_run_report_structure(study, tmp_path):
    run = copy_run(study["runs"][0], tmp_path / "00007-copy")
    index = run_report(run)
    assert index == run / "report" / "index.html"
    assert_self_contained(index)
    # Precision from 512 real images: its caption says what inflates it at that size.
    for text in (index.read_text(), (index.parent / "report.md").read_text()):
        assert "With 512 real images, the few unusual ones have wide balls" in text
    page = parse(index)
    assert page.headings == [
        "Headline",
        "Samples",
        "Metrics over steps",
        "Sample grids over training",
        "Nearest real neighbours",
        "Dataset",
        "Config",
    ]
    text = index.read_text(encoding="utf-8")
    best = json.loads((run / "best.json").read_text())
    assert f"{best['kid']:.4g}" in text  # the headline shows the real best KID
    assert "State: completed" in text and "album" in text
    assets = run / "report" / "assets"
    # the timeline shows every grid of this short run (20 steps, a grid every 10)
    assert sorted(p.name for p in assets.glob("grid_*.png")) == [
        "grid_000010.png",
        "grid_000020.png",
    ]
    with Image.open(assets / "progress.gif") as gif:
        assert gif.n_frames == 2
    assert Image.open(assets / "best_samples.png").size == (8 * 16, 8 * 16)  # 64 images, 16 px
    assert (assets / "neighbours.png").is_file() and "possible memorization" not in text
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert f"<code>{config['lr_g']}</code>" in text
    markdown = (run / "report" / "report.md").read_text(encoding="utf-8")
    assert (
        "## Metrics over steps" in markdown and "![metric curves](assets/curves.png)" in markdown
    )
    # re-running refreshes the report and drops pictures it wrote and no longer references;
    # a picture it never wrote stays
    (run / "samples" / "step_000010.png").unlink()
    (assets / "grid_000005.png").write_bytes((assets / "grid_000010.png").read_bytes())
    assert run_report(run) == index and not (assets / "grid_000010.png").exists()
    assert (assets / "grid_000005.png").exists()
    # a moved run folder keeps a working report: every reference is relative
    moved = shutil.move(str(run), str(tmp_path / "elsewhere"))
    assert_self_contained(Path(moved) / "report" / "index.html")


def test_a_report_removes_and_replaces_only_files_it_wrote(study, tmp_path):
    run = copy_run(study["runs"][0], tmp_path / "00008-out")
    out = tmp_path / "site"
    (out / "assets").mkdir(parents=True)
    (out / "assets" / "logo.png").write_bytes(b"the user's logo")
    (out / "notes.txt").write_text("the user's notes")
    for _ in range(2):  # a first report there, then a refresh of it
        assert run_report(run, out) == out / "index.html"
        assert (out / "assets" / "logo.png").read_bytes() == b"the user's logo"
        assert (out / "notes.txt").read_text() == "the user's notes"
    written = json.loads((out / MANIFEST).read_text())["written"]
    assert "index.html" in written and "assets/curves.png" in written
    assert "assets/logo.png" not in written
    # A page of the same name that albumgan did not write is not replaced: one line, exit 2.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "index.html").write_text("<h1>my homepage</h1>")
    refused = _cli("run", str(run), "--out", str(theirs))
    assert refused.returncode == 2 and "index.html there was not written by" in refused.stderr
    assert (theirs / "index.html").read_text() == "<h1>my homepage</h1>"
    assert sorted(p.name for p in theirs.iterdir()) == ["index.html"]  # nothing else written


def test_damaged_files_of_a_run_are_left_out_with_a_warning_not_a_traceback(study, tmp_path):
    """What a kill or a full disk leaves in a run directory: a cut grid PNG, a metrics line with
    bytes that are not UTF-8, a line that is JSON but not a record; a cut best checkpoint."""
    run = copy_run(study["runs"][0], tmp_path / "00009-damaged")
    other = copy_run(study["runs"][1], tmp_path / "00010-other")
    grid = sorted((run / "samples").glob("step_*.png"))[-1]
    grid.write_bytes(grid.read_bytes()[: grid.stat().st_size // 2])
    with (run / "metrics.jsonl").open("ab") as log:
        log.write(b'{"step": 3, "g_loss": 1.0, "note": "\xff\xfe"}\n[1, 2]\n"text"\n')
    report = _cli("run", str(run))
    compare = _cli("compare", str(run), str(other), "--out", str(tmp_path / "cmp"))
    for proc in (report, compare):
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "skipped 3 line(s) that are not JSON records" in proc.stderr, proc.stderr
    assert f"{grid}: cannot be decoded" in report.stderr
    page = (run / "report" / "index.html").read_text()
    assert grid.name.replace("step_", "grid_") not in page  # left out, the others shown
    # A cut best checkpoint: one line, exit 2, the way on named.
    best = run / "checkpoints" / "best.npz"
    best.write_bytes(best.read_bytes()[:100])
    sample = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sample", str(run), "--n", "4",
         "--checkpoint", "best"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert sample.returncode == 2 and "Traceback" not in sample.stderr, sample.stderr
    (line,) = [x for x in sample.stderr.splitlines() if x.startswith("error:")]
    assert "best.npz: cannot be read" in line and "--checkpoint final" in line, line


def test_crawled_strings_are_escaped(study, tmp_path):
    """A keyword or album title from the web holding markup comes out as text."""
    hostile = '<script>alert("x")</script>'
    dataset = tmp_path / "hostile"
    (dataset / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        name = f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(
            dataset / "images" / name
        )
        origin = (
            {"engine": "bing", "keyword": hostile}
            if i % 2
            else {"source": "itunes", "year": 2019, "rank": i, "artist": hostile, "album": "*A*"}
        )
        records.append({"src": name, "status": "kept", "out": f"images/{name}", "origin": origin})
    (dataset / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    run = copy_run(study["runs"][0], tmp_path / "00001-hostile")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config.update(dataset=str(dataset), name=hostile)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    index = run_report(run)
    text = index.read_text(encoding="utf-8")
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "crawl: bing: 3" in text and "gaon: itunes: 3" in text
    markdown = index.with_name("report.md").read_text(encoding="utf-8")
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "\\*A\\*" in markdown  # Markdown syntax from a title is escaped too


def test_report_of_a_run_in_progress_says_so(study, tmp_path):
    run = copy_run(study["runs"][0], tmp_path / "00002-live")
    status = json.loads((run / "status.json").read_text())
    status.update(state="running", pid=os.getpid(), host=socket.gethostname())
    (run / "status.json").write_text(json.dumps(status))
    with RunLock(run):  # its writer holds the run directory's lock while it lives
        text = run_report(run).read_text(encoding="utf-8")
    assert "State: running" in text and "still in progress" in text
    # the lock released with status.json still saying running: the writer died (kill -9)
    text = run_report(run).read_text(encoding="utf-8")
    assert "State: stalled" in text and f"albumgan train --run-dir {run}" in text
    # ended by an I/O error: the report gives the reason
    status.update(state="failed", message="I/O error: No space left on device (ckpt.npz)")
    (run / "status.json").write_text(json.dumps(status))
    text = run_report(run).read_text(encoding="utf-8")
    assert "State: failed" in text and "stopped on an error (I/O error: No space left" in text


def test_sweep_report(study, tmp_path):
    out = tmp_path / "sweep-report"
    index = sweep_report(study["journal"], study["name"], out)
    assert_self_contained(index)
    page = parse(index)
    assert page.headings == [
        "Configurations: which differences are real",
        "Leaderboard: every trial",
        "What mattered",
        "Optimization history and parallel coordinates",
        "Best and worst trial",
        "Pruned, failed and diverged trials",
    ]
    text = index.read_text(encoding="utf-8")
    leaderboard = text[text.index('id="leaderboard"') :].split("</table>")[0]
    rows = re.findall(r"<tr(?: class=\"best\")?><td class=\"num\">(\d+)</td>", leaderboard)
    assert sorted(rows) == ["0", "1", "2", "3"]  # every trial of the 2x2 grid, once
    links = [v for tag, _, v in page.refs if tag == "a"]
    assert len(links) == 4 and all(v.endswith("report/index.html") for v in links)
    assets = out / "assets"
    for name in ("history.png", "parallel.png", "effect_batch_size.png"):
        assert (assets / name).is_file(), name
    # lr_g=1e30 diverged both times: among scored trials lr_g has one value, so no chart, a note
    assert not (assets / "effect_lr_g.png").exists()
    assert "lr_g: one value among the scored trials" in text
    # One swept parameter left: no importance (it would be 1.0 whatever the data), and why.
    assert not (assets / "importance.png").exists()
    assert "parameter importance not shown: 1 swept parameter(s)" in text
    assert text.count("diverged") >= 2  # both diverging trials listed with their reason
    assert "exit code 3" in text
    assert (assets / "best_samples.png").is_file() and (assets / "worst_samples.png").is_file()
    markdown = index.with_name("report.md").read_text(encoding="utf-8")
    assert markdown.count("| complete |") == 2


def test_compare_report(study, tmp_path):
    out = tmp_path / "cmp"
    index = compare_report(study["runs"], out)
    assert_self_contained(index)
    text = index.read_text(encoding="utf-8")
    differing = re.search(r"Settings that differ: (.*?)\.</p>", text).group(1)
    assert "<code>batch_size</code>" in differing and "name" not in differing
    assert re.search(r'<tr class="diff"><th>batch_size</th>', text)
    assert not re.search(r'<tr class="diff"><th>resolution</th>', text)
    assert (out / "assets" / "curves_all.png").is_file()
    assert len(list((out / "assets").glob("run*_best_samples.png"))) == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_writes_reports_and_rejects_bad_input(study, tmp_path):
    run = copy_run(study["runs"][1], tmp_path / "00003-cli")
    done = _cli("run", str(run))
    assert done.returncode == 0, done.stderr
    assert f"report: {run / 'report' / 'index.html'}" in done.stdout
    missing = _cli("run", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a run directory" in missing.stderr
    wrong = _cli("sweep", "--storage", study["journal"], "--study", "nope")
    assert wrong.returncode == 2 and "studies there: rs" in wrong.stderr
    one = _cli("compare", str(run))
    assert one.returncode == 2 and "at least two" in one.stderr
    # nothing listens on port 1; a bare postgresql:// URL goes through psycopg2, which we install
    down = _cli("sweep", "--storage", "postgresql://u@127.0.0.1:1/db", "--study", "rs")
    assert down.returncode == 2 and "psycopg2.OperationalError" in down.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr + one.stderr + down.stderr


@pytest.mark.parametrize("kind", ["run", "sweep", "compare", "replicated"])
def test_reports_in_a_real_browser(study, tmp_path, kind, request):
    """Headless Chromium opens each report from disk: every image decodes, nothing is fetched
    from the network, no console error; the leaderboard sorts on click. A screenshot is kept."""
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium not installed (.ci/run installs Debian's chromium)")
    if kind == "run":
        index = run_report(copy_run(study["runs"][0], tmp_path / "00004-browser"))
    elif kind == "sweep":
        index = sweep_report(study["journal"], study["name"], tmp_path / "sweep")
    elif kind == "replicated":
        replicated = request.getfixturevalue("replicated_study")
        index = sweep_report(replicated["journal"], replicated["name"], tmp_path / "replicated")
    else:
        index = compare_report(study["runs"], tmp_path / "compare")
    problems, remote = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on(
            "request",
            lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
        )
        page.goto(index.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
        )
        if kind in ("sweep", "replicated"):
            page.click("#leaderboard thead th:nth-child(1)")  # by trial number, ascending
            order = page.evaluate(
                "Array.from(document.querySelectorAll('#leaderboard tbody tr'))"
                ".map(r => Number(r.cells[0].textContent))"
            )
            assert order == sorted(order)
        artifacts = Path(request.config.rootpath) / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / f"report-{kind}.png"), full_page=True)
        browser.close()
    assert images and all(width > 0 for _, width in images), images
    assert not problems, problems
    assert not remote, remote


def test_sweep_report_of_a_study_in_progress_says_so(study, tmp_path):
    import optuna

    journal = tmp_path / "live.journal"
    shutil.copyfile(study["journal"], journal)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    optuna.load_study(study_name=study["name"], storage=storage).ask()  # a trial now running
    index = sweep_report(str(journal), study["name"], tmp_path / "live", run_reports=False)
    text = index.read_text(encoding="utf-8")
    assert "1 trial(s) still running" in text
    assert '<td class="state-running">running</td>' in text


def test_a_replicated_grid_is_reported_by_configuration(replicated_study, tmp_path):
    """2 batch sizes x 2 seeds: two configurations of two runs each, ranked by
    mean, with the numbers a direct computation gives and a verdict each."""
    from scipy import stats

    from albumgan.sweeps.storage import load_study

    study = load_study(replicated_study["journal"], "rep")
    by_config: dict[str, list[float]] = {}
    for trial in study.trials:
        assert trial.state.name == "COMPLETE", trial.user_attrs
        config = str(trial.params["batch_size"])
        by_config.setdefault(config, []).append(trial.value)
    index = sweep_report(replicated_study["journal"], "rep", tmp_path / "rep")
    html, md = index.read_text(), (index.parent / "report.md").read_text()
    table = html[html.index('id="groups"') :].split("</table>")[0]
    rows = re.findall(r"<tr(?: class=\"best\")?><td class=\"num\">(\d+)</td>(.*?)</tr>", table)
    assert [int(rank) for rank, _ in rows] == [1, 2]
    means = sorted(np.mean(v) for v in by_config.values())
    shown = [float(re.findall(r'data-v="([^"]+)"', cells)[0]) for _, cells in rows]
    assert shown == pytest.approx(means)
    best = min(by_config.values(), key=np.mean)
    half = stats.t.ppf(0.975, 1) * np.std(best, ddof=1) / np.sqrt(2)
    assert f"{np.mean(best) - half:.4g} – {np.mean(best) + half:.4g}" in table
    verdicts = re.findall(r'<td class="verdict">([^<]+)</td>', table)
    assert verdicts[0] == "best" and all(
        v in ("worse", "within seed noise", "better") for v in verdicts[1:]
    )
    assert "Welch" in html and "95% t interval" in html
    section = md[md.index("## Configurations: which differences are real") :]
    assert re.findall(r"^\| (\d+) \| ", section, re.M)[:2] == ["1", "2"]  # a row per config
    assert "cannot be told from seed noise" not in html  # it has replicates


def test_a_sweep_without_replicates_says_its_differences_are_not_resolved(study, tmp_path):
    index = sweep_report(study["journal"], study["name"], tmp_path / "single")
    assert "cannot be told from seed noise" in index.read_text()
    assert "cannot be told from seed noise" in (index.parent / "report.md").read_text()


def test_a_compare_folder_is_named_by_the_runs_it_compares(tmp_path):
    from albumgan.reports.compare_report import compare_folder_name

    runs = tmp_path / "runs"
    assert (
        compare_folder_name([runs / "00003-smoke", runs / "00007-smoke"]) == "compare-00003-00007"
    )
    trials = [runs / "s" / f"trial-{i:04d}" for i in (2, 5, 9)]
    assert compare_folder_name(trials) == "compare-trial-0002-trial-0005-trial-0009"
    assert compare_folder_name(trials[:2]) != compare_folder_name(trials[1:])
    members = [runs / "s" / "trial-0001" / f"seed-{s}" for s in (0, 1)]
    assert compare_folder_name(members) == "compare-trial-0001.seed-0-trial-0001.seed-1"
    same = compare_folder_name([runs / "a" / "trial-0001", runs / "b" / "trial-0001"])
    assert same.startswith("compare-trial-0001-") and len(same) == len("compare-trial-0001-") + 8
    many = compare_folder_name([runs / "s" / f"trial-{i:04d}" for i in range(12)])
    assert many.startswith("compare-trial-0000-and-11-more-")


def test_a_replicated_trials_step_is_its_slowest_seeds(tmp_path):
    """A random/bayes trial on seeds writes trial-N/seed-S runs and no status of its own: the
    leaderboard's step column is the step every seed reached, not 0."""
    from albumgan.reports.rundata import load_run
    from albumgan.reports.sweep_report import _step

    trial = tmp_path / "trial-0001"
    trial.mkdir()
    (trial / "config.yaml").write_text("seed: [0, 1]\nsteps: 1500\n")
    for seed, step in ((0, 1500), (1, 1200)):
        member = trial / f"seed-{seed}"
        member.mkdir()
        (member / "config.yaml").write_text(f"seed: {seed}\nsteps: 1500\n")
        (member / "status.json").write_text(json.dumps({"state": "running", "step": step}))
    assert _step(load_run(trial)) == 1200
    assert _step(load_run(trial / "seed-0")) == 1500
    assert _step(None) is None
