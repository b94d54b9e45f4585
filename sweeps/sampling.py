"""W&B's parameter distributions, drawn through Optuna with W&B's meaning.

Where Optuna has the same distribution it is used as is, so samplers see it directly:
categorical -> ``suggest_categorical``, int_uniform -> ``suggest_int`` (both ends included),
uniform -> ``suggest_float``, log_uniform_values and inv_log_uniform_values (the same law: the
log of the value is uniform) -> ``suggest_float(log=True)``.

Every other form is drawn as W&B draws it, by its inverse CDF: Optuna suggests a quantile
``u`` in [0, 1] (a parameter named ``<name>.u``, which TPE models like any other) and the value is
the form's quantile at ``u``: normal, log_normal and beta by their inverse CDFs, q_* forms
rounded to multiples of ``q`` (half to even, like numpy; an int when ``q`` is written as an
int, W&B's default ``q`` is 1.0), and values with probabilities by the cumulative weights.
Each trial records the values themselves (user attribute ``params``).

A grid enumerates categorical and constant values, int_uniform as ``min..max`` and q_uniform as
``min, min+q, ...`` below ``max`` (W&B's grid); W&B's grid search refuses every other form.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

GRID_FORMS = ("constant", "categorical", "int_uniform", "q_uniform")
NATIVE_FORMS = ("constant", "categorical", "int_uniform", "uniform", "log_uniform_values")
NATIVE_FORMS += ("inv_log_uniform_values",)
_EDGE = 1e-12  # quantiles of unbounded laws are taken in [EDGE, 1 - EDGE]


@dataclass(frozen=True)
class Param:
    """One leaf parameter of a sweep file. ``path``: its name, and its groups' names before it
    for nested parameters (``("optimizer", "lr")``); ``spec`` holds the W&B keys."""

    path: tuple[str, ...]
    form: str
    spec: dict

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def get(self, key: str, default: Any = None) -> Any:
        return self.spec.get(key, default)


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


def suggest(trial, param: Param) -> Any:
    """The value of ``param`` for an Optuna trial."""
    form, name = param.form, param.name
    if form == "constant":
        return param.get("value")
    if form == "categorical":
        return decode(trial.suggest_categorical(name, [encode(v) for v in param.get("values")]))
    if form == "int_uniform":
        return trial.suggest_int(name, param.get("min"), param.get("max"))
    if form == "uniform":
        return trial.suggest_float(name, float(param.get("min")), float(param.get("max")))
    if form in ("log_uniform_values", "inv_log_uniform_values"):
        low, high = float(param.get("min")), float(param.get("max"))
        return trial.suggest_float(name, low, high, log=True)
    return quantile(param, trial.suggest_float(f"{name}.u", 0.0, 1.0))


def quantile(param: Param, u: float) -> Any:
    """The value W&B's random search gives ``param`` for the uniform draw ``u``."""
    form = param.form
    q = param.get("q", 1.0)
    if form == "categorical_w_probabilities":
        total = 0.0
        for value, weight in zip(param.get("values"), param.get("probabilities")):
            total += weight
            if u < total:
                return value
        return param.get("values")[-1]
    if form in ("uniform", "q_uniform"):
        low, high = param.get("min"), param.get("max")
        x = low + u * (high - low)
        return _quantize(x, q) if form == "q_uniform" else x
    if form in ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values"):
        low, high = math.log(param.get("min")), math.log(param.get("max"))
        x = math.exp(low + u * (high - low))
        return _quantize(x, q) if form == "q_log_uniform_values" else x
    u = min(max(u, _EDGE), 1.0 - _EDGE)
    if form in ("normal", "q_normal", "log_normal", "q_log_normal"):
        z = param.get("mu", 0.0) + param.get("sigma", 1.0) * NormalDist().inv_cdf(u)
        x = math.exp(z) if "log" in form else z
        return _quantize(x, q) if form.startswith("q_") else x
    if form in ("beta", "q_beta"):
        from scipy.stats import beta

        x = float(beta.ppf(u, param.get("a", 1.0), param.get("b", 1.0)))
        return _quantize(x, q) if form == "q_beta" else x
    raise ValueError(f"{param.name}: no quantile for {form}")


def _quantize(x: float, q: float | int) -> float | int:
    """``x`` rounded to a multiple of ``q``, half to even; an int when ``q`` is an int."""
    multiple = round(x / q) * q
    return int(multiple) if isinstance(q, int) and not isinstance(q, bool) else float(multiple)


def grid_size(param: Param) -> int:
    """How many values ``grid_values`` gives at most, without listing them (a range of 10^9
    integers is counted, not built)."""
    form = param.form
    if form == "categorical":
        return len(param.get("values"))
    if form == "int_uniform":
        return max(0, param.get("max") - param.get("min") + 1)
    if form == "q_uniform":
        return max(0, math.ceil((param.get("max") - param.get("min")) / param.get("q", 1.0)))
    return 1


def grid_values(param: Param) -> list:
    """The values W&B's grid search gives ``param``, in order, equal values once."""
    form = param.form
    if form == "constant":
        values = [param.get("value")]
    elif form == "categorical":
        values = list(param.get("values"))
    elif form == "int_uniform":
        values = list(range(param.get("min"), param.get("max") + 1))
    elif form == "q_uniform":
        low, q = param.get("min"), param.get("q", 1.0)
        values = [low + i * q for i in range(grid_size(param))]  # numpy.arange(low, high, q)
        if isinstance(q, float) or isinstance(low, float):
            values = [float(v) for v in values]
    else:
        raise ValueError(f"{param.name}: W&B's grid search refuses {form}")
    unique: dict[str, Any] = {}
    for value in values:  # W&B: 1 and 1.0 are one point, True and 1 are two; the last stays
        unique.pop(_identity(value), None)
        unique[_identity(value)] = value
    return list(unique.values())


def _identity(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (list, tuple)):
            return [type(v).__name__, *map(plain, v)]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return json.dumps([type(value) is bool, plain(value)], sort_keys=True, default=str)


def nest(values: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """Leaf values by path -> the run config ``wandb agent`` passes: groups as nested dicts.
    Order: plain parameters by name, then groups by name (W&B's order)."""
    tree: dict[str, Any] = {}
    for path, value in sorted(values.items(), key=lambda item: (len(item[0]) > 1, item[0])):
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree
