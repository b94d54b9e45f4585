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
    assert "bundled sweeps: modern_bayes, seed_grid" in capsys.readouterr().err
