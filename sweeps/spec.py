"""W&B sweep YAMLs: loading, checking, and their translation to Optuna.

One sweep file serves both: ``wandb sweep sweeps/seed_grid.yaml`` + ``wandb agent ID`` online,
and ``albumgan sweep run sweeps/seed_grid.yaml`` (Optuna) offline or across machines.

Parameter forms (W&B's sweep schema) and their Optuna distributions::

    {value: v}                                   fixed, passed to every trial
    {values: [...]}  (distribution: categorical) CategoricalDistribution; list values (noise
                                                 shapes) are stored as JSON strings, decoded back
    {min, max} ints  / distribution: int_uniform IntDistribution
    {min, max} floats / distribution: uniform    FloatDistribution
    distribution: log_uniform_values            FloatDistribution(log=True)
    distribution: q_uniform (q)                  FloatDistribution(step=q)

A trial's values become exactly the argv ``wandb agent`` builds: ``--key=value`` with Python's
``str()`` of the value (``--noise_shape=[1, 1, 100]``, ``--ema=False``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_core.config import KEYS, ConfigError, parse_value

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "log_uniform_values",
    "q_uniform",
)
TOP_LEVEL = (
    "program",
    "method",
    "metric",
    "parameters",
    "early_terminate",
    "run_cap",
    "command",
    "name",
    "description",
    "project",
    "entity",
)


DEFAULT_PROGRAM = "experiments/train.py"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds experiments/, gan_core/, sweeps/


class SweepError(ValueError):
    """A sweep file that cannot run, with every problem named."""


@dataclass(frozen=True)
class Param:
    """One swept (or fixed) parameter."""

    name: str
    kind: str  # one of DISTRIBUTIONS
    values: tuple = ()
    low: float | int | None = None
    high: float | int | None = None
    q: float | None = None


@dataclass(frozen=True)
class SweepSpec:
    method: str
    metric: str
    goal: str  # minimize | maximize
    params: tuple[Param, ...]
    program: str = "experiments/train.py"  # DEFAULT_PROGRAM; run through resolve_program
    early_terminate: dict = field(default_factory=dict)
    run_cap: int | None = None
    name: str = ""

    @property
    def swept(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.kind != "constant")

    @property
    def fixed(self) -> dict[str, Any]:
        return {p.name: p.values[0] for p in self.params if p.kind == "constant"}


def _param(name: str, body: Any, problems: list[str]) -> Param | None:
    if not isinstance(body, dict):
        problems.append(f"parameters.{name}: expected a mapping, got {body!r}")
        return None
    if "value" in body:
        return Param(name, "constant", (body["value"],))
    distribution = body.get("distribution")
    if distribution and distribution not in DISTRIBUTIONS:
        problems.append(
            f"parameters.{name}.distribution: {distribution!r} is not supported; "
            f"use one of {', '.join(DISTRIBUTIONS)}"
        )
        return None
    if "values" in body:
        values = body["values"]
        if not isinstance(values, list) or not values:
            problems.append(f"parameters.{name}.values: expected a non-empty list")
            return None
        return Param(name, "categorical", tuple(values))
    if "min" in body and "max" in body:
        low, high = body["min"], body["max"]
        if not low < high:
            problems.append(f"parameters.{name}: min must be < max, got {low} and {high}")
            return None
        if distribution is None:
            both_int = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
            distribution = "int_uniform" if both_int else "uniform"
        if distribution == "log_uniform_values" and low <= 0:
            problems.append(f"parameters.{name}: log_uniform_values needs min > 0, got {low}")
            return None
        q = body.get("q")
        if distribution == "q_uniform" and not q:
            problems.append(f"parameters.{name}: q_uniform needs q")
            return None
        return Param(name, distribution, (), low, high, q)
    problems.append(f"parameters.{name}: needs value, values, or min and max")
    return None


def parse_spec(data: Any, source: str = "sweep") -> SweepSpec:
    """Check a loaded sweep mapping against W&B's schema and our config keys.

    Raises:
        SweepError: every problem found, one per line.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SweepError(f"{source}: expected a mapping at the top level")
    for key in data:
        if key not in TOP_LEVEL:
            problems.append(f"{key}: not a W&B sweep key (allowed: {', '.join(TOP_LEVEL)})")
    method = data.get("method")
    if method not in METHODS:
        problems.append(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    metric = data.get("metric") or {}
    if not isinstance(metric, dict) or not metric.get("name"):
        problems.append("metric.name: required (e.g. kid)")
        metric = {}
    goal = metric.get("goal", "minimize")
    if goal not in ("minimize", "maximize"):
        problems.append(f"metric.goal: expected minimize or maximize, got {goal!r}")
    params = []
    for name, body in (data.get("parameters") or {}).items():
        if name not in KEYS:
            problems.append(f"parameters.{name}: not a training config key (see --help)")
            continue
        param = _param(name, body, problems)
        if param is None:
            continue
        for value in (*param.values, *(v for v in (param.low, param.high) if v is not None)):
            try:
                parse_value(name, value)
            except ConfigError as exc:
                problems.append(f"parameters.{name}: {exc}")
        params.append(param)
    if not params:
        problems.append("parameters: at least one is required")
    if method == "grid" and any(p.kind not in ("constant", "categorical") for p in params):
        problems.append("method grid: every parameter needs value or values")
    early = data.get("early_terminate") or {}
    if early and early.get("type") != "hyperband":
        problems.append(
            f"early_terminate.type: only hyperband is supported, got {early.get('type')!r}"
        )
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        problems.append(f"run_cap: expected a positive integer, got {run_cap!r}")
    program = str(data.get("program", DEFAULT_PROGRAM))
    if resolve_program(program) is None:
        problems.append(
            f"program: {program!r} not found (looked in {Path.cwd()} and in the albumgan "
            f"package at {PACKAGE_ROOT})"
        )
    if problems:
        raise SweepError("\n".join(f"{source}: {p}" for p in problems))
    return SweepSpec(
        method=method,
        metric=metric["name"],
        goal=goal,
        params=tuple(params),
        program=program,
        early_terminate=early,
        run_cap=run_cap,
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


def resolve_sweep_file(path_or_name: str | Path) -> Path:
    """A sweep YAML path, or the bare name of a bundled sweep (``smoke``, ``seed_grid``): a
    pip-installed albumgan has no ``sweeps/`` folder in the user's working directory."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    bundled = PACKAGE_ROOT / "sweeps" / f"{path_or_name}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in (PACKAGE_ROOT / "sweeps").glob("*.yaml")))
    raise SweepError(f"no such sweep file {str(path_or_name)!r}; bundled sweeps: {names}")


def load_spec(path: str | Path) -> SweepSpec:
    path = resolve_sweep_file(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {str(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from exc
    return parse_spec(data, str(path))


# ------------------------------------------------------------------------------------------------
# Optuna translation
# ------------------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Optuna stores categorical choices as JSON-able scalars: lists become JSON strings."""
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def distribution(param: Param):
    """The Optuna distribution of a swept parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "categorical":
        return CategoricalDistribution([encode(v) for v in param.values])
    if param.kind == "int_uniform":
        return IntDistribution(int(param.low), int(param.high))
    if param.kind == "uniform":
        return FloatDistribution(float(param.low), float(param.high))
    if param.kind == "log_uniform_values":
        return FloatDistribution(float(param.low), float(param.high), log=True)
    if param.kind == "q_uniform":
        return FloatDistribution(float(param.low), float(param.high), step=float(param.q))
    raise ValueError(f"{param.name}: {param.kind} is not a swept distribution")


def suggest(trial, spec: SweepSpec) -> dict[str, Any]:
    """Fixed values plus the trial's suggestions, decoded (noise shapes back to lists)."""
    values = dict(spec.fixed)
    for p in spec.swept:
        if p.kind == "categorical":
            value = decode(trial.suggest_categorical(p.name, [encode(v) for v in p.values]))
        elif p.kind == "int_uniform":
            value = trial.suggest_int(p.name, int(p.low), int(p.high))
        else:
            value = trial.suggest_float(
                p.name,
                float(p.low),
                float(p.high),
                log=p.kind == "log_uniform_values",
                step=float(p.q) if p.kind == "q_uniform" else None,
            )
        values[p.name] = value
    return values


def grid_space(spec: SweepSpec) -> dict[str, list]:
    return {p.name: [encode(v) for v in p.values] for p in spec.swept}


def to_argv(values: dict[str, Any]) -> list[str]:
    """The flags ``wandb agent`` builds for ``${args}``: ``--key=value``, Python ``str()``."""
    return [f"--{key}={value}" for key, value in values.items()]
