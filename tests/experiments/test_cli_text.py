"""What the ``albumgan`` command prints about itself: its version, and help in plain text."""

from __future__ import annotations

from importlib.metadata import version

from albumgan.experiments.cli import main


def test_version_is_the_installed_packages(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"albumgan {version('albumgan')}\n"


def test_help_is_plain_text(capsys):
    for argv in (["--help"], ["train", "--help"], ["sweep", "run", "--help"]):
        try:
            assert main(argv) == 0
        except SystemExit as exit:  # argparse's own --help
            assert exit.code == 0
        out = capsys.readouterr().out
        assert "albumgan" in out or "usage:" in out
        assert "``" not in out and ":func:" not in out, argv


def test_sweep_show_prints_a_bundled_file_to_start_from(capsys):
    import yaml

    assert main(["sweep", "show", "smoke"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["name"] == "smoke" and shown["metric"]["name"] == "kid"
    assert main(["sweep", "show", "nope"]) == 2
    assert "bundled sweeps: modern_bayes, recipe_bayes, seed_grid" in capsys.readouterr().err


def test_a_closed_stdout_is_a_quiet_exit(tmp_path):
    """``albumgan ... | head``: the reader went away; no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    for argv in (["sweep", "show", "smoke"], ["data", "list", "--data-dir", str(tmp_path)]):
        read, write = os.pipe()
        os.close(read)  # the reader has gone before the first byte
        proc = subprocess.run(
            [sys.executable, "-m", "albumgan.experiments.cli", *argv],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
        os.close(write)
        assert proc.returncode == 141 and proc.stderr == "", (argv, proc.stderr)


def test_numbers_out_of_range_are_one_line_usage_errors(capsys):
    from albumgan.data_tools.cli import main as data_main

    for command, argv, words in (
        (main, ["sample", "runs/x", "--seed", "-1"], "--seed: -1 is outside 0 .."),
        (data_main, ["prepare", "src", "--out", "o", "--size", "60000"], "60000 is outside 8 .."),
        (data_main, ["synth", "--out", "o", "--size", "100000"], "100000 is outside 8 .."),
    ):
        try:
            command(argv)
            raise AssertionError(f"{argv} was accepted")
        except SystemExit as exit:
            assert exit.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("error: ") and words in line, line
