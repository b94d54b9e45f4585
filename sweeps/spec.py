"""W&B sweep YAMLs: loading, checking, and what Optuna runs for them.

One sweep file serves both: ``wandb sweep sweeps/seed_grid.yaml`` + ``wandb agent ID`` online,
and ``albumgan sweep run sweeps/seed_grid.yaml`` (Optuna) offline or across machines.

A file is first judged by W&B's rules (``sweeps.wandb_schema``): what W&B refuses is refused
with W&B's reason. What W&B accepts but this harness cannot run is refused saying so ("valid for
W&B, not run offline: ..."). Then, when the program is our trainer, every parameter must be one
of its config keys with values it accepts. Distributions: ``sweeps.sampling``; the trial's
argv: ``sweeps.command``; ``early_terminate``: ``sweeps.hyperband``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from albumgan.gan_core.config import KEYS, ConfigError, TrainConfig, load_yaml, parse_value
from albumgan.gan_core.contract import LOGGED, REPLICATE_KEY, SCORES, AlbumganError
from albumgan.gan_core.fileio import safe_yaml
from albumgan.sweeps import sampling
from albumgan.sweeps.sampling import (
    GRID_FORMS,
    Param,
    decode,
    encode,
    grid_size,
    grid_values,
    nest,
)
from albumgan.sweeps.wandb_schema import FORMS, form_of, parameter_problems, violations

DEFAULT_PROGRAM = "experiments/train.py"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds experiments/, gan_core/, sweeps/
TRAINER = PACKAGE_ROOT / DEFAULT_PROGRAM
NOT_OFFLINE = "valid for W&B, not run offline"
MAX_GRID_POINTS = 100_000  # queued up front: 10^5 trials take seconds to queue, 10^8 never end
# W&B fills these in a parameter that leaves them out.
PARAMETER_DEFAULTS = {"q": 1.0, "mu": 0.0, "sigma": 1.0, "a": 1.0, "b": 1.0}


class SweepError(AlbumganError):
    """A sweep file that cannot run, with every problem named."""


@dataclass(frozen=True)
class SweepSpec:
    method: str
    metric: str
    goal: str  # minimize | maximize
    params: tuple[Param, ...]  # every leaf, groups flattened (Param.path)
    program: str = DEFAULT_PROGRAM  # run through resolve_program
    command: tuple | None = None  # None: W&B's default command
    early_terminate: dict = field(default_factory=dict)  # W&B's defaults filled in
    run_cap: int | None = None
    target: float | None = None  # metric.target: the study ends once a trial reaches it
    name: str = ""

    @property
    def swept(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.form != "constant")

    @property
    def fixed(self) -> dict[str, Any]:
        """Constants of top-level parameters, by name."""
        return {p.name: p.get("value") for p in self.params if p.form == "constant"}

    @property
    def replicate_seeds(self) -> tuple:
        """The seeds every configuration of a random or bayes sweep runs with: the values of its
        ``seed`` parameter (one trial per configuration, its value the mean over seeds). Empty
        for a grid, which enumerates ``seed`` like any other parameter, and a fixed seed."""
        if self.method == "grid":
            return ()
        for param in self.params:
            if param.path == (REPLICATE_KEY,) and param.form == "categorical":
                return tuple(param.get("values"))
        return ()

    def reached_target(self, value: float | None) -> bool:
        if self.target is None or value is None:
            return False
        return value <= self.target if self.goal == "minimize" else value >= self.target


def _leaves(parameters: dict, prefix: tuple[str, ...] = ()) -> list[Param]:
    """Every leaf parameter, groups flattened, each with W&B's defaults filled."""
    found = []
    for name, body in parameters.items():
        path = (*prefix, str(name))
        form = form_of(body)
        if form == "group":
            found += _leaves(body["parameters"], path)
            continue
        spec = dict(body)
        for key, default in PARAMETER_DEFAULTS.items():
            if key in FORMS[form]["properties"]:
                spec.setdefault(key, default)
        found.append(Param(path, form, spec))
    return found


def _offline_problems(data: dict, params: list[Param]) -> list[str]:
    """What W&B accepts but `albumgan sweep run` cannot do."""
    problems = []
    if data["method"] == "custom":
        problems.append(f"method: {NOT_OFFLINE}: custom (an external controller suggests runs)")
    for key, what in (
        ("scheduler", "a W&B Launch scheduler"),
        ("metrics", "several metrics (method custom)"),
        ("job", "a W&B Launch job"),
        ("image_uri", "a W&B Launch image"),
    ):
        if key in data:
            problems.append(f"{key}: {NOT_OFFLINE}: {what}")
    if "metric" not in data and "metrics" not in data:
        problems.append(
            f"metric: {NOT_OFFLINE} without one: Optuna records one value per trial (e.g. "
            "metric: {name: kid, goal: minimize})"
        )
    if data["method"] == "grid":
        for param in params:
            if param.form not in GRID_FORMS:
                problems.append(
                    f"parameters.{param.name}: W&B's grid search refuses {param.form} (it "
                    f"fails when a run is asked for); use values, int_uniform or q_uniform"
                )
        if not problems:
            points = math.prod(grid_size(p) for p in params)
            if points > MAX_GRID_POINTS:
                problems.append(
                    f"parameters: a grid of {points:,} points, more than the {MAX_GRID_POINTS:,} "
                    "a sweep queues; use fewer values, or method random/bayes with a run_cap"
                )
    name = data.get("name")
    if name is not None and (problem := study_name_problem(str(name))):
        problems.append(f"name: {problem}")
    return problems


def study_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a study's name, or None. The name is a folder under --runs-dir
    (its journal and trials' run directories): one plain folder name, nothing that climbs out."""
    if not name.strip():
        return "empty; a study needs a name"
    if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        return (
            f"{name!r} is used as a folder under --runs-dir, so it must be one plain name "
            "(no '/', '\\', '..' or absolute path)"
        )
    if len(name.encode("utf-8")) > 200:
        return f"{name[:40]!r}... is longer than 200 bytes (a folder name)"
    return None


def _trainer_problems(params: list[Param]) -> list[str]:
    """Parameters our trainer would refuse: unknown keys, values it cannot parse."""
    problems = []
    seen: set[str] = set()
    for param in params:
        key = param.path[-1]  # in a group (nested parameters), each leaf is a config key
        if key not in KEYS:
            problems.append(f"parameters.{param.name}: not a training config key (see --help)")
            continue
        if key in seen:
            problems.append(f"parameters.{param.name}: {key} is given twice")
        seen.add(key)
        given = [param.get(k) for k in ("value", "min", "max") if k in param.spec]
        given += list(param.get("values", ()))
        for value in given:
            try:
                parse_value(key, value)
            except ConfigError as exc:
                problems.append(f"parameters.{param.name}: {exc}")
    return list(dict.fromkeys(problems))


def metric_problems(metric: str, params: list[Param], command: Any = None) -> list[str]:
    """Whether albumgan's trainer logs ``metric`` in every run of this sweep: one of ``LOGGED``,
    and for a score, ``eval_every`` > 0 in every run (from the sweep's parameters, else the
    preset its ``command`` names with ``--config``, else the default, 0: off)."""
    logged = ", ".join(LOGGED)
    if metric not in LOGGED:
        return [f"metric.name: {metric!r} is not logged by albumgan's trainer; it logs {logged}"]
    if metric not in SCORES:
        return []
    param = next((p for p in params if p.path[-1] == "eval_every"), None)
    if param is None:
        every = _preset_value(command, "eval_every")
        given = f"{every} (from the preset)" if every else f"{every} (the default: off)"
        values = [every]
    else:
        values = [param.get("value")] if "value" in param.spec else list(param.get("values", ()))
        if "min" in param.spec:
            values.append(param.get("min"))
        given = ", ".join(map(str, values))
    if all(isinstance(v, int) and v > 0 for v in values):
        return []
    return [
        f"metric.name: {metric} is a score, logged only every eval_every steps with "
        f"eval_every > 0, and this sweep's runs have eval_every {given}; add e.g. "
        "eval_every: {value: 500} to its parameters"
    ]


def _preset_value(command: Any, key: str) -> Any:
    """``key`` as the preset a sweep's command passes (``--config NAME``) sets it, else the
    trainer's default."""
    tokens = [str(t) for t in command or ()]
    preset = None
    for i, token in enumerate(tokens):
        if token.startswith("--config="):
            preset = token.split("=", 1)[1]
        elif token == "--config" and i + 1 < len(tokens):
            preset = tokens[i + 1]
    if preset is not None:
        try:
            overrides = load_yaml(preset)
        except (ConfigError, OSError):
            overrides = {}  # the trainer will say what is wrong with it
        if key in overrides:
            return overrides[key]
    return getattr(TrainConfig(), key)


def parse_spec(data: Any, source: str = "sweep") -> SweepSpec:
    """Check a loaded sweep mapping: W&B's rules, what runs offline, our config keys.

    Raises:
        SweepError: every problem found, one per line.
    """
    problems = violations(data)
    if not isinstance(data, dict):
        raise SweepError("\n".join(f"{source}: {p}" for p in problems))
    # Every problem at once: the parameters W&B accepts are checked further too.
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    well_formed = {k: v for k, v in parameters.items() if not parameter_problems(str(k), v)}
    params = _leaves(well_formed)
    if not problems:
        problems += _offline_problems(data, params)
    program = data.get("program", DEFAULT_PROGRAM)
    resolved = resolve_program(program) if isinstance(program, str) else None
    if resolved is None and isinstance(program, str):
        problems.append(
            f"program: {program!r} not found (looked in {Path.cwd()} and in the albumgan "
            f"package at {PACKAGE_ROOT})"
        )
    elif resolved == TRAINER.resolve():
        problems += _trainer_problems(params)
        metric = data.get("metric")
        if not problems and isinstance(metric, dict):
            problems += metric_problems(str(metric.get("name")), params, data.get("command"))
    if problems:
        raise SweepError("\n".join(f"{source}: {p}" for p in problems))
    metric = data["metric"]
    early = dict(data.get("early_terminate") or {})
    if early:
        early.setdefault("eta", 3)
        early.setdefault("strict", True)
    command = data.get("command")
    return SweepSpec(
        method=data["method"],
        metric=metric["name"],
        goal=metric.get("goal", "minimize"),
        params=tuple(params),
        program=program,
        command=tuple(command) if command else None,
        early_terminate=early,
        run_cap=int(data["run_cap"]) if "run_cap" in data else None,
        target=metric.get("target"),
        name=str(data.get("name") or ""),
    )


def resolve_program(program: str) -> Path | None:
    """The script a trial runs, as an absolute path, or None when there is none.

    As ``wandb agent`` does, a relative ``program`` is looked up in the working directory. When
    it is not there, the package's own copy is used: ``experiments/train.py`` then works for a
    pip-installed albumgan from any folder.
    """
    path = Path(program).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, PACKAGE_ROOT / path]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def bundled_sweeps() -> list[str]:
    """The names of the sweep files albumgan ships (``sweep run NAME`` takes them)."""
    return sorted(p.stem for p in (PACKAGE_ROOT / "sweeps").glob("*.yaml"))


def resolve_sweep_file(path_or_name: str | Path) -> Path:
    """A sweep YAML path, or the bare name of a bundled sweep (``smoke``, ``seed_grid``): a
    pip-installed albumgan has no ``sweeps/`` folder in the user's working directory."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    bundled = PACKAGE_ROOT / "sweeps" / f"{path_or_name}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(bundled_sweeps())
    raise SweepError(f"no such sweep file {str(path_or_name)!r}; bundled sweeps: {names}")


def read_sweep_file(path: str | Path) -> Any:
    """The YAML content of a sweep file (or a bundled sweep's name), unchecked."""
    path = resolve_sweep_file(path)
    try:
        return safe_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {str(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc


def load_spec(path: str | Path) -> SweepSpec:
    return parse_spec(read_sweep_file(path), str(resolve_sweep_file(path)))


def grid_order(spec: SweepSpec) -> list[Param]:
    """A grid's swept parameters in W&B's order: by name (a group's leaves at the group's
    place); the last one varies fastest."""
    return sorted(spec.swept, key=lambda p: p.path)


def _grid_choices(param: Param) -> list:
    """A grid parameter's values as Optuna stores the choices (lists JSON-encoded)."""
    return [encode(v) for v in grid_values(param)]


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every point of a grid sweep, as Optuna params (choices JSON-encoded), in W&B's order."""
    order = grid_order(spec)
    choices = [_grid_choices(p) for p in order]
    return [
        {p.name: value for p, value in zip(order, point)} for point in itertools.product(*choices)
    ]


def suggest(trial, spec: SweepSpec) -> dict[str, Any]:
    """A trial's run config, as ``wandb agent`` passes it: constants, drawn values (in a grid,
    the queued point's), groups as nested dicts."""
    values = {}
    for param in spec.params:
        if spec.replicate_seeds and param.path == (REPLICATE_KEY,):
            continue  # every seed runs: the replicate axis is not sampled
        if spec.method == "grid" and param.form != "constant":
            choices = _grid_choices(param)
            values[param.path] = decode(trial.suggest_categorical(param.name, choices))
        else:
            values[param.path] = sampling.suggest(trial, param)
    return nest(values)
