"""Config layering and every value form `wandb agent` sends; no TensorFlow needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from albumgan.experiments.train import parse_args
from albumgan.gan_core.config import DEFAULT_EMA_DECAY, ConfigError, TrainConfig, parse_value

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_seed_run():
    cfg = TrainConfig()
    assert (cfg.resolution, cfg.batch_size, cfg.noise_shape, cfg.steps) == (
        64,
        16,
        (1, 1, 100),
        10_000,
    )
    assert (cfg.arch, cfg.label_noise, cfg.beta1) == ("seed", 0.2, 0.5)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("[1, 1, 100]", (1, 1, 100)),  # one argv element, Python list syntax (wandb agent)
        ("[1,1,128]", (1, 1, 128)),
        ("(1, 1, 64)", (1, 1, 64)),
        ("1x1x100", (1, 1, 100)),
        ("100", (100,)),
        (100, (100,)),
        ([1, 1, 100], (1, 1, 100)),  # YAML / JSON list
    ],
)
def test_noise_shape_forms(raw, expected):
    assert parse_value("noise_shape", raw) == expected


@pytest.mark.parametrize("raw", ["[2, 2, 100]", "1x100", "abc", "[]", "0", "[1, 1, -3]"])
def test_bad_noise_shape(raw):
    with pytest.raises(ConfigError, match="noise_shape"):
        parse_value("noise_shape", raw)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("False", 0.0),
        ("false", 0.0),
        (False, 0.0),
        ("0", 0.0),
        ("True", DEFAULT_EMA_DECAY),
        (True, DEFAULT_EMA_DECAY),
        ("0.999", 0.999),
        (0.99, 0.99),
    ],
)
def test_ema_forms(raw, expected):
    assert parse_value("ema", raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("True", "color,translation,cutout"),
        ("False", ""),
        ("color,cutout", "color,cutout"),
        (["translation"], "translation"),
        ("['color', 'cutout']", "color,cutout"),
    ],
)
def test_diffaugment_forms(raw, expected):
    assert parse_value("diffaugment", raw) == expected


def test_layers_defaults_then_yaml_then_json_then_flags(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("batch_size: 32\nsteps: 500\nlr_g: 0.001\n")
    args_json = tmp_path / "args.json"
    args_json.write_text(json.dumps({"steps": 700, "noise_shape": [1, 1, 128], "ema": False}))
    cfg, _ = parse_args(
        ["--config", str(preset), "--config-json", str(args_json), "--steps=900", "--ema=0.99"]
    )
    assert cfg.batch_size == 32  # YAML over defaults
    assert cfg.lr_g == 0.001
    assert cfg.noise_shape == (1, 1, 128)  # JSON over YAML
    assert cfg.steps == 900  # flags over JSON
    assert cfg.ema == 0.99
    assert cfg.name == "p"  # a preset names the run after its file
    assert cfg.lr_d == TrainConfig().lr_d  # untouched keys keep their defaults


def test_wandb_agent_argument_styles():
    # ${args}: --key=value; ${args_no_equals}: --key value; ${args_no_boolean_flags}: bare --ema
    cfg, _ = parse_args(
        ["--batch_size=64", "--noise_shape=[1, 1, 100]", "--lr_d", "0.0003", "--ema"]
    )
    assert (cfg.batch_size, cfg.noise_shape, cfg.lr_d, cfg.ema) == (
        64,
        (1, 1, 100),
        0.0003,
        DEFAULT_EMA_DECAY,
    )


def test_wandb_nested_value_json(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"batch_size": {"value": 32}}))
    cfg, _ = parse_args(["--config-json", str(path)])
    assert cfg.batch_size == 32


def test_options_are_not_config_keys():
    cfg, options = parse_args(["--run-dir", "x/y", "--resume", "--dry-run", "--steps=5"])
    assert (options.run_dir, options.resume, options.dry_run, cfg.steps) == ("x/y", True, True, 5)


def test_a_sweeps_metric_chooses_the_best_checkpoint_unless_the_config_does(monkeypatch):
    assert (TrainConfig().best_metric, TrainConfig().best_direction) == ("kid", "minimize")
    assert TrainConfig(best_metric="precision").best_direction == "maximize"
    monkeypatch.setenv("ALBUMGAN_BEST_METRIC", "fid")
    monkeypatch.setenv("ALBUMGAN_BEST_GOAL", "maximize")
    cfg, _ = parse_args(["--steps=5"])
    assert (cfg.best_metric, cfg.best_direction) == ("fid", "maximize")
    cfg, _ = parse_args(["--best_metric=recall", "--best_goal="])
    assert (cfg.best_metric, cfg.best_direction) == ("recall", "maximize")
    with pytest.raises(ConfigError, match="best_metric: expected one of kid"):
        parse_args(["--best_metric=val_loss"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learning_rate=0.1"], "unknown config key 'learning_rate'"),
        (["--batch_size=abc"], "batch_size: expected an integer"),
        (["--resolution=48"], "resolution: expected a power of two"),
        (["--precision=fp8"], "precision: expected one of"),
        (["--arch=resnet"], "arch: expected one of seed, dcgan"),
        (["--steps"], "steps: missing value"),
        (["--config", "no_such_preset"], "no such file"),
    ],
)
def test_bad_input_is_a_config_error(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_args(argv)


def test_unknown_yaml_key_names_file_and_allowed_keys(tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("batch_size: 8\nbatchsize: 16\n")
    with pytest.raises(
        ConfigError, match=r"unknown config key 'batchsize' in .*bad.yaml; allowed keys: dataset"
    ):
        parse_args(["--config", str(preset)])


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().steps = 3  # type: ignore[misc]


@pytest.mark.parametrize("entry", [["-m", "albumgan.experiments.train"], ["experiments/train.py"]])
def test_cli_unknown_key_exits_2_with_one_line(entry):
    proc = subprocess.run(
        [sys.executable, *entry, "--no_such_key=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no_such_key" in lines[0] and "allowed keys: dataset, resolution" in lines[0]


def test_presets_parse():
    for name in ("seed_popular16", "seed_popular64", "seed_general32", "smoke", "modern"):
        cfg, _ = parse_args(["--config", name])
        assert cfg.name == name
    seed16, _ = parse_args(["--config", "seed_popular16"])
    assert (seed16.resolution, seed16.batch_size, seed16.noise_shape, seed16.steps) == (
        64,
        16,
        (1, 1, 100),
        10_000,
    )
    general, _ = parse_args(["--config", "seed_general32"])
    assert (general.batch_size, general.noise_shape, general.dataset) == (
        32,
        (1, 1, 128),
        "crawled",
    )
    modern, _ = parse_args(["--config", "modern"])
    assert modern.diffaugment_ops == ("color", "translation", "cutout") and modern.ema > 0


def test_option_flags_take_boolean_spellings():
    _, options = parse_args(["--resume=no", "--dry-run=True"])
    assert (options.resume, options.dry_run) == (False, True)
    with pytest.raises(ConfigError, match="--resume maybe: not a run directory"):
        parse_args(["--resume=maybe"])  # not a boolean: the run directory to resume
