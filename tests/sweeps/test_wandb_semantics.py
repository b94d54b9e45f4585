"""One sweep file, W&B's meaning: validation verdicts, sampling, hyperband bands, command macros.

Every verdict below is what W&B's own rules give (wandb/sweeps: its schema, validator, samplers
and tests; docs/wandb_sweep_semantics.md says where each comes from).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from albumgan.sweeps.command import build_argv
from albumgan.sweeps.hyperband import WandbHyperband, bands
from albumgan.sweeps.sampling import grid_values, quantile
from albumgan.sweeps.spec import NOT_OFFLINE, SweepError, grid_points, parse_spec, suggest
from albumgan.sweeps.wandb_schema import violations

ROOT = Path(__file__).resolve().parents[2]
OK = "ok"  # W&B accepts it and `albumgan sweep run` runs it


def _file(parameters: dict | None = None, **top) -> dict:
    # g_loss: logged by every run (a score such as kid needs eval_every > 0 among the parameters)
    data = {"method": "random", "metric": {"name": "g_loss"}, "run_cap": 2}
    data["parameters"] = parameters if parameters is not None else {"lr_g": {"values": [0.001]}}
    data.update(top)
    return {k: v for k, v in data.items() if v is not None}


# (case, sweep file, verdict: OK, or a fragment of the one-line reason)
CASES = [
    # --- accepted here before, refused by W&B ---------------------------------------------------
    ("value and values", _file({"seed": {"value": 1, "values": [1, 2]}}), "unknown key values"),
    ("min/max/q, no distribution", _file({"steps": {"min": 8, "max": 32, "q": 8}}), "q"),
    ("metric.gaol", _file(metric={"name": "g_loss", "gaol": "minimize"}), "unknown key gaol"),
    (
        "early_terminate.miniter",
        _file(early_terminate={"type": "hyperband", "miniter": 3}),
        "unknown key miniter",
    ),
    ("default: under a parameter", _file({"seed": {"values": [1], "default": 1}}), "default"),
    (
        "values with int_uniform",
        _file({"seed": {"values": [1, 2], "distribution": "int_uniform"}}),
        "int_uniform",
    ),
    (
        "values with constant",
        _file({"seed": {"values": [1, 2], "distribution": "constant"}}),
        "value: required",
    ),
    (
        "min/max with categorical",
        _file({"seed": {"min": 1, "max": 2, "distribution": "categorical"}}),
        "values: required",
    ),
    (
        "min/max with constant",
        _file({"seed": {"min": 1, "max": 2, "distribution": "constant"}}),
        "value: required",
    ),
    (
        "probabilities not summing to 1",
        _file({"seed": {"values": [1, 2], "probabilities": [0.5, 0.4]}}),
        "must sum to 1",
    ),
    (
        "probabilities in a grid",
        _file({"seed": {"values": [1, 2], "probabilities": [0.5, 0.5]}}, method="grid"),
        "grid search refuses categorical_w_probabilities",
    ),
    ("hyperband without iterations", _file(early_terminate={"type": "hyperband"}), "min_iter"),
    (
        "hyperband min_iter 0",
        _file(early_terminate={"type": "hyperband", "min_iter": 0}),
        "min_iter: must be >= 1",
    ),
    (
        "hyperband eta 1",
        _file(early_terminate={"type": "hyperband", "min_iter": 1, "eta": 1}),
        "eta: must be > 1",
    ),
    ("a string command", _file(command="python train.py"), "command: expected array"),
    ("a number as name", _file(name=5), "name: expected a string"),
    ("a number as program", _file(program=5), "program: expected a string"),
    ("a number as metric.name", _file(metric={"name": 5}), "metric.name: expected a string"),
    ("run_cap true", _file(run_cap=True), "run_cap: expected an integer"),
    ("run_cap 0", _file(run_cap=0), "run_cap: must be > 0"),
    ("unknown top-level key", _file(params={}), "unknown key params"),
    (
        "int_uniform from floats",
        _file({"seed": {"min": 1.0, "max": 9.0, "distribution": "int_uniform"}}),
        "integer",
    ),
    (
        "base-e log_uniform",
        _file({"lr_g": {"distribution": "log_uniform", "min": -9, "max": -5}}),
        "log_uniform_values",
    ),
    ("min not below max", _file({"lr_g": {"min": 0.2, "max": 0.1}}), "not less than max"),
    ("bad parameter name", _file({"1lr": {"values": [1]}}), "not a valid parameter name"),
    # --- refused here before, accepted by W&B, now run -------------------------------------------
    ("normal", _file({"lr_g": {"distribution": "normal", "mu": 0.5, "sigma": 0.1}}), OK),
    ("q_normal", _file({"steps": {"distribution": "q_normal", "mu": 50, "sigma": 5, "q": 1}}), OK),
    ("log_normal", _file({"lr_g": {"distribution": "log_normal", "mu": -7, "sigma": 1}}), OK),
    ("q_log_normal", _file({"steps": {"distribution": "q_log_normal", "mu": 4, "q": 2}}), OK),
    ("beta", _file({"label_noise": {"distribution": "beta", "a": 2, "b": 5}}), OK),
    ("q_beta", _file({"beta1": {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1}}), OK),
    (
        "q_log_uniform_values",
        _file(
            {"batch_size": {"distribution": "q_log_uniform_values", "min": 8, "max": 64, "q": 8}}
        ),
        OK,
    ),
    (
        "inv_log_uniform_values",
        _file({"lr_g": {"distribution": "inv_log_uniform_values", "min": 1e-5, "max": 1e-3}}),
        OK,
    ),
    (
        "categorical_w_probabilities",
        _file({"seed": {"values": [1, 2], "probabilities": [0.9, 0.1]}}),
        OK,
    ),
    (
        "explicit categorical_w_probabilities",
        _file(
            {
                "seed": {
                    "distribution": "categorical_w_probabilities",
                    "values": [1, 2],
                    "probabilities": [0.25, 0.75],
                }
            }
        ),
        OK,
    ),
    (
        "q_uniform without q",
        _file({"steps": {"distribution": "q_uniform", "min": 8, "max": 40}}),
        OK,
    ),
    (
        "nested parameters",
        _file({"adam": {"parameters": {"lr_g": {"values": [1e-3]}, "beta1": {"value": 0.5}}}}),
        OK,
    ),
    (
        "W&B's other top-level keys",
        _file(
            description="d", project="p", entity="e", controller={"type": "cloud"}, kind="sweep"
        ),
        OK,
    ),
    ("metric.target", _file(metric={"name": "g_loss", "goal": "minimize", "target": 0.5}), OK),
    (
        "hyperband max_iter and s",
        _file(early_terminate={"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}),
        OK,
    ),
    ("a command", _file(command=["${env}", "${interpreter}", "${program}", "${args}"]), OK),
    # --- valid for W&B, not run offline ----------------------------------------------------------
    ("method custom", _file(method="custom"), NOT_OFFLINE),
    (
        "several metrics",
        _file(method="custom", metric=None, metrics=[{"name": "kid"}, {"name": "fid"}]),
        NOT_OFFLINE,
    ),
    ("a W&B Launch job", _file(job="entity/project/job:latest"), NOT_OFFLINE),
    ("no metric", _file(metric=None), NOT_OFFLINE),
    (
        "a grid over a uniform range",
        _file({"lr_g": {"min": 0.1, "max": 0.2}}, method="grid"),
        "grid search refuses uniform",
    ),
    # --- W&B accepts, our trainer does not know the key -----------------------------------------
    ("not a config key", _file({"learning_rate": {"values": [0.1]}}), "not a training config key"),
    (
        "a nested key that is not one",
        _file({"opt": {"parameters": {"lr": {"values": [1]}}}}),
        "parameters.opt.lr: not a training config key",
    ),
]


@pytest.mark.parametrize("case, data, verdict", CASES, ids=[c[0] for c in CASES])
def test_validate_gives_the_verdict_wandb_gives(case, data, verdict):
    if verdict == OK:
        parse_spec(data, "s.yaml")
        return
    with pytest.raises(SweepError) as info:
        parse_spec(data, "s.yaml")
    assert verdict in str(info.value), str(info.value)
    assert all(line.startswith("s.yaml: ") for line in str(info.value).splitlines())


def test_schema_verdicts_alone_separate_wandb_from_offline_limits():
    """What only this harness cannot run is valid by W&B's rules: no W&B violation at all."""
    for case, data, verdict in CASES:
        wandb_ok = verdict == OK or verdict == NOT_OFFLINE or "grid search" in verdict
        wandb_ok = wandb_ok or "not a training config key" in verdict
        assert (violations(data) == []) == wandb_ok, (case, violations(data))


# ------------------------------------------------------------------------------------------------
# Sampling: W&B's value sets and frequencies
# ------------------------------------------------------------------------------------------------


def _draws(parameters: dict, n: int, method: str = "random") -> list[dict]:
    spec = parse_spec(_file(parameters, method=method))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [suggest(study.ask(), spec) for _ in range(n)]


def test_q_uniform_rounds_to_multiples_of_q_as_integers_when_q_is_one():
    draws = [
        d["batch_size"]
        for d in _draws(
            {"batch_size": {"distribution": "q_uniform", "min": 6, "max": 30, "q": 8}}, 400
        )
    ]
    assert set(draws) == {8, 16, 24, 32} and all(type(v) is int for v in draws)
    # W&B: round(U(6, 30) / 8) * 8, so 8 and 32 get the ends of the range: 6..12 and 28..30
    share = {v: draws.count(v) / len(draws) for v in (8, 16, 24, 32)}
    assert share[16] == pytest.approx(8 / 24, abs=0.08) and share[32] == pytest.approx(
        2 / 24, abs=0.05
    )
    floats = [
        d["steps"]
        for d in _draws({"steps": {"distribution": "q_uniform", "min": 8, "max": 40}}, 50)
    ]
    assert all(type(v) is float and v.is_integer() for v in floats)  # W&B's default q is 1.0


def test_probabilities_are_honoured():
    draws = [
        d["seed"] for d in _draws({"seed": {"values": [7, 8], "probabilities": [0.9, 0.1]}}, 2000)
    ]
    assert draws.count(7) / len(draws) == pytest.approx(0.9, abs=0.03)


def test_normal_and_beta_follow_their_quantiles():
    draws = [
        d["lr_g"]
        for d in _draws({"lr_g": {"distribution": "normal", "mu": 5.0, "sigma": 2.0}}, 3000)
    ]
    q1, median, q3 = statistics.quantiles(draws, n=4)
    assert median == pytest.approx(5.0, abs=0.15)
    assert (q1, q3) == pytest.approx((5.0 - 2 * 0.6745, 5.0 + 2 * 0.6745), abs=0.2)
    from albumgan.sweeps.sampling import Param

    beta = Param(("x",), "beta", {"a": 2.0, "b": 5.0})
    assert quantile(beta, 0.5) == pytest.approx(0.26445, abs=1e-4)  # Beta(2, 5) median
    lognormal = Param(("x",), "log_normal", {"mu": 1.0, "sigma": 0.5})
    assert quantile(lognormal, 0.5) == pytest.approx(math.e)
    q_beta = Param(("x",), "q_beta", {"a": 1.0, "b": 1.0, "q": 1.0})
    assert {quantile(q_beta, u) for u in (0.1, 0.4, 0.6, 0.9)} == {0.0, 1.0}


def test_grid_values_and_order_are_wandbs():
    spec = parse_spec(
        _file(
            {
                "steps": {"distribution": "q_uniform", "min": 1, "max": 5, "q": 2},
                "batch_size": {"min": 8, "max": 10},
                "ema": {"values": [0, 0.0, False]},
            },
            method="grid",
        )
    )
    by_name = {p.name: grid_values(p) for p in spec.swept}
    assert by_name["steps"] == [1, 3]  # arange(min, max, q): max left out
    assert by_name["batch_size"] == [8, 9, 10]  # both ends
    assert by_name["ema"] == [0.0, False]  # 0 and 0.0 are one point, False another
    points = grid_points(spec)
    assert len(points) == 2 * 3 * 2
    # sorted by name (batch_size, ema, steps), the last varying fastest
    assert [list(p.values()) for p in points[:3]] == [[8, 0.0, 1], [8, 0.0, 3], [8, False, 1]]


def test_nested_parameters_reach_the_program_as_wandb_agent_passes_them(tmp_path):
    spec = parse_spec(
        _file(
            {
                "seed": {"value": 3},
                "adam": {"parameters": {"beta1": {"value": 0.3}, "lr_g": {"values": [0.001]}}},
            }
        )
    )
    config = suggest(optuna.create_study().ask(), spec)
    assert config == {"seed": 3, "adam": {"beta1": 0.3, "lr_g": 0.001}}
    argv = build_argv(None, "train.py", config, tmp_path)
    assert argv[3:] == ["--seed=3", "--adam={'beta1': 0.3, 'lr_g': 0.001}"]
    from albumgan.experiments.train import parse_args

    cfg, _ = parse_args(argv[3:])
    assert (cfg.seed, cfg.beta1, cfg.lr_g) == (3, 0.3, 0.001)


# ------------------------------------------------------------------------------------------------
# Hyperband
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "early, first",
    [
        ({"max_iter": 27, "s": 2, "eta": 3}, [3, 9]),
        ({"max_iter": 19, "s": 2, "eta": 3}, [2, 6]),
        ({"max_iter": 81, "s": 3, "eta": 3}, [3, 9, 27]),
        ({"max_iter": 10, "s": 2, "eta": 2.5}, [1, 4]),
        ({"min_iter": 3, "eta": 3}, [3, 9, 27, 81]),
        ({"min_iter": 2, "eta": 2.5}, [2, 5, 12, 31, 78]),
        ({"min_iter": 30, "eta": 1.5}, [30, 45, 67, 101, 151]),
    ],
)
def test_hyperband_bands_are_wandbs(early, first):
    found = bands({"type": "hyperband", **early})
    assert found[: len(first)] == first
    assert len(found) == (len(first) if "max_iter" in early else 100)


@pytest.mark.parametrize("strict", [True, False])
def test_hyperband_stops_the_runs_wandb_stops(strict):
    """W&B's own worked example: max_iter 9, s 2, eta 3 -> bands 1 and 3; run a finished, the
    others running; thresholds 10 (band 1) and 4 (band 3); b and e are stopped."""
    study = optuna.create_study()
    histories = {"a": [9, 8], "b": [11, 11], "c": [10, 8, 3], "d": [10, 7, 4], "e": [10, 6, 6]}
    trials = {}
    for name, values in histories.items():
        trial = study.ask()
        for step, value in enumerate(values, start=1):
            trial.report(value, step * 50)  # reported at training steps; the order counts
        trials[name] = trial
    study.tell(trials["a"], 8)
    pruner = WandbHyperband(
        {"type": "hyperband", "max_iter": 9, "s": 2, "eta": 3, "strict": strict}
    )
    running = {t.number: t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))}
    stopped = {n for n, t in trials.items() if n != "a" and pruner.prune(study, running[t.number])}
    assert stopped == {"b", "e"}


# ------------------------------------------------------------------------------------------------
# command: every macro reaches the trainer; one of them through a real trial
# ------------------------------------------------------------------------------------------------

MACROS = [
    ["${env}", "${interpreter}", "${program}", "--label_noise=0.0", "${args}"],
    ["${interpreter}", "${program}", "${args_no_hyphens}", "label_noise=0.0"],
    ["${interpreter}", "${program}", "${args_json}", "--label_noise=0.0"],
    ["${interpreter}", "${program}", "--config-json", "${args_json_file}", "--label_noise=0"],
    ["${interpreter}", "${program}", "${args_json_file}", "--label_noise=0.0"],
    ["${interpreter}", "${program}", "${args_no_boolean_flags}", "--label_noise=0.0"],
    ["${interpreter}", "${program}", "${args_no_equals}", "--label_noise", "0.0", "${unknown}"],
    ["${interpreter}", "${program}", "${args_override_hydra}", "+label_noise=0.0"],
]
MACRO_PARAMETERS = {
    "steps": {"value": 2},
    "resolution": {"value": 16},
    "g_width": {"value": 8},
    "d_width": {"value": 8},
    "noise_shape": {"value": [1, 1, 16]},
    "precision": {"value": "float32"},
    "eval_every": {"value": 2},
    "eval_samples": {"value": 16},
    "ema": {"values": [True]},  # a boolean: ${args_no_boolean_flags} passes a bare --ema
    "batch_size": {"values": [8]},
    "seed": {"value": 5},
}


def _check_macro_config(config: dict, command: list, argv: list[str], run_dir: Path) -> None:
    assert config["label_noise"] == 0.0  # the literal item reached the trainer
    assert (config["batch_size"], config["seed"], config["ema"]) == (8, 5, 0.999)
    if "${args_json_file}" in command:
        arg_file = run_dir / "sweep-args.json"
        assert json.loads(arg_file.read_text())["batch_size"] == 8 and str(arg_file) in argv


@pytest.mark.parametrize("command", MACROS, ids=[c[2] for c in MACROS])
def test_each_command_macro_gives_the_trainer_the_config(command, tmp_path):
    """The argv a trial runs (built as `wandb agent` builds it), read by the trainer's own parser:
    every macro gives the same config. The test below runs one such argv as a real trial."""
    from albumgan.experiments.train import parse_args

    spec = parse_spec(_file(MACRO_PARAMETERS, command=command))
    params = suggest(optuna.create_study().ask(), spec)
    argv = build_argv(spec.command, "train.py", params, tmp_path)
    assert argv[argv.index("train.py") - 1] == sys.executable
    cfg, _ = parse_args(argv[argv.index("train.py") + 1 :])
    _check_macro_config(cfg.to_dict(), command, argv, tmp_path)


def test_a_command_macro_trains_with_the_argv_wandb_agent_builds(cache_dir, tmp_path):
    from albumgan.sweeps.runner import run_sweep

    command = MACROS[0]
    sweep = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    sweep["parameters"] = MACRO_PARAMETERS
    sweep["command"] = command
    path = tmp_path / "macro.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "macro", str(tmp_path / "m.journal"), runs_dir=tmp_path / "runs")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
    argv = trial.user_attrs["argv"]  # recorded as run
    assert argv[:2] == ["/usr/bin/env", sys.executable] and argv[2].endswith("train.py")
    run_dir = Path(trial.user_attrs["run_dir"])
    _check_macro_config(
        yaml.safe_load((run_dir / "config.yaml").read_text()), command, argv, run_dir
    )


TARGET_TRAINER = """
import json, os, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"])
for step in (1, 2):
    with (run_dir / "metrics.jsonl").open("a") as log:
        log.write(json.dumps({"step": step, "kid": float(args["seed"]) + 1 / step}) + "\\n")
(run_dir / "status.json").write_text(json.dumps({"state": "completed", "step": 2}))
"""


def test_metric_target_ends_the_sweep_once_a_trial_reaches_it(tmp_path):
    from albumgan.sweeps.runner import run_sweep

    program = tmp_path / "fake_train.py"
    program.write_text(TARGET_TRAINER)
    data = _file({"seed": {"values": [3, 1, 0, 2]}}, method="grid", program=str(program))
    data["metric"] = {"name": "kid", "goal": "minimize", "target": 1.6}
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(data))
    study = run_sweep(path, "t", str(tmp_path / "t.journal"), runs_dir=tmp_path / "runs")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # seed 3 (kid 3.5), then seed 1 (kid 1.5 <= 1.6): no trial after it
    assert [t.user_attrs["params"]["seed"] for t in done] == [3, 1]
    again = run_sweep(path, "t", str(tmp_path / "t.journal"), runs_dir=tmp_path / "runs")
    assert len([t for t in again.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
