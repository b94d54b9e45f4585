"""W&B's sweep-file schema, written from W&B's documented rules, and a validator over it.

``violations(data)`` gives the problems W&B's own validator (the ``wandb/sweeps`` package, which
the W&B server and ``wandb sweep`` use) would report, one line each naming the key, and nothing
for a file W&B accepts. Types, required and unknown keys, enums and ranges are checked by
``jsonschema`` (draft 7) against ``SCHEMA``; what a schema cannot say is checked by hand:

- a parameter is matched to one form (its ``distribution``, else inferred the way W&B infers it:
  ``value`` -> constant, ``values`` -> categorical, ``values`` + ``probabilities`` ->
  categorical_w_probabilities, integer ``min``/``max`` -> int_uniform, a float among them ->
  uniform, ``parameters`` -> a nested group), then checked against that form;
- ``min < max``; ``probabilities`` as long as ``values`` and summing to 1 (within 1e-5);
- ``metric`` and ``metrics`` not both; ``metrics`` only with ``method: custom``; a ``scheduler``
  without ``early_terminate`` or a local controller;
- the base-e forms ``log_uniform``, ``inv_log_uniform``, ``q_log_uniform`` are refused, as W&B
  refuses them: their ``*_values`` forms take the limits themselves.

W&B's ``sweeps`` package is not a dependency (it pins numpy < 2); docs/wandb_sweep_semantics.md
records the rules and where each comes from.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema

__all__ = ["DISTRIBUTIONS", "SCHEMA", "form_of", "parameter_problems", "violations"]

_NUMBER = {"type": "number"}
_INT = {"type": "integer", "format": "integer"}  # format: a real int, not 3.0
_Q = {"type": "number", "exclusiveMinimum": 0}
_SIGMA = {"type": "number", "minimum": 0}


def _form(distribution: str, required: list[str], **keys: dict) -> dict:
    """The schema of one parameter form: its keys, nothing else."""
    properties = {"distribution": {"enum": [distribution]}, **keys}
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


_BOUNDS = {"min": _NUMBER, "max": _NUMBER}
_POSITIVE_MIN = {"min": {"type": "number", "exclusiveMinimum": 0}, "max": _NUMBER}
FORMS: dict[str, dict] = {
    "constant": _form("constant", ["value"], value={}),
    "categorical": _form("categorical", ["values"], values={"type": "array", "minItems": 1}),
    "categorical_w_probabilities": _form(
        "categorical_w_probabilities",
        ["values", "probabilities"],
        values={"type": "array", "minItems": 1},
        probabilities={"type": "array", "minItems": 1, "items": {"type": "number", "minimum": 0}},
    ),
    "int_uniform": _form("int_uniform", ["min", "max"], min=_INT, max=_INT),
    "uniform": _form("uniform", ["min", "max"], **_BOUNDS),
    "q_uniform": _form("q_uniform", ["distribution", "min", "max"], q=_Q, **_BOUNDS),
    "log_uniform_values": _form(
        "log_uniform_values", ["distribution", "min", "max"], **_POSITIVE_MIN
    ),
    "inv_log_uniform_values": _form(
        "inv_log_uniform_values", ["distribution", "min", "max"], **_POSITIVE_MIN
    ),
    "q_log_uniform_values": _form(
        "q_log_uniform_values", ["distribution", "min", "max"], q=_Q, **_POSITIVE_MIN
    ),
    "normal": _form("normal", ["distribution"], mu=_NUMBER, sigma=_SIGMA),
    "q_normal": _form("q_normal", ["distribution"], mu=_NUMBER, sigma=_SIGMA, q=_Q),
    "log_normal": _form("log_normal", ["distribution"], mu=_NUMBER, sigma=_SIGMA),
    "q_log_normal": _form("q_log_normal", ["distribution"], mu=_NUMBER, sigma=_SIGMA, q=_Q),
    "beta": _form("beta", ["distribution"], a=_SIGMA, b=_SIGMA),
    "q_beta": _form("q_beta", ["distribution"], a=_SIGMA, b=_SIGMA, q=_Q),
    # Base-e forms: min/max are exponents. In W&B's schema, but its validator refuses them.
    "log_uniform": _form("log_uniform", ["distribution", "min", "max"], **_BOUNDS),
    "inv_log_uniform": _form("inv_log_uniform", ["distribution", "min", "max"], **_BOUNDS),
    "q_log_uniform": _form("q_log_uniform", ["distribution", "min", "max"], q=_Q, **_BOUNDS),
}
DISTRIBUTIONS = tuple(FORMS)
DEPRECATED = {"log_uniform", "inv_log_uniform", "q_log_uniform"}
GROUP = {
    "type": "object",
    "required": ["parameters"],
    "properties": {"parameters": {"type": "object", "minProperties": 1}},
    "additionalProperties": False,
}
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"

_METRIC = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "goal": {"enum": ["minimize", "maximize"]},
        "target": _NUMBER,
        "impute": {"enum": ["latest", "best", "worst"]},
        "impute_while_running": {"enum": ["latest", "best", "worst", "false"]},
    },
}
_HYPERBAND = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["hyperband"]},
        "min_iter": {"type": "integer", "minimum": 1},
        "max_iter": {"type": "integer"},
        "s": _NUMBER,
        "eta": {"type": "number", "exclusiveMinimum": 1},
        "strict": {"type": "boolean"},
    },
    "anyOf": [{"required": ["max_iter", "s"]}, {"required": ["min_iter"]}],
}
_TEXT = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["method"],
    "additionalProperties": False,
    "properties": {
        "method": {"enum": ["bayes", "random", "grid", "custom"]},
        "parameters": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": NAME_PATTERN},
        },
        "metric": _METRIC,
        "metrics": {"type": "array", "minItems": 2, "items": _METRIC},
        "early_terminate": _HYPERBAND,
        "run_cap": {"type": "integer", "exclusiveMinimum": 0},
        "command": {"type": "array"},
        "controller": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["local", "cloud"]}},
        },
        "scheduler": {
            "type": "object",
            "required": ["engine"],
            "additionalProperties": False,
            "properties": {
                "engine": {"enum": ["optuna", "ax", "wandb"]},
                "source": _TEXT,
                "optimizer": _TEXT,
                "search_space": _TEXT,
            },
            "dependencies": {"optimizer": ["source"], "search_space": ["source"]},
        },
        "kind": {"enum": ["sweep"]},
        **{key: _TEXT for key in ("program", "name", "description", "project", "entity")},
        **{key: _TEXT for key in ("job", "image_uri", "apiVersion")},
    },
}

_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("integer")(lambda value: isinstance(value, int) and not isinstance(value, bool))


def _messages(instance: Any, schema: dict, where: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema, format_checker=_FORMATS)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    return [_message(error, where) for error in errors]


def _message(error: jsonschema.ValidationError, where: str) -> str:
    """One line naming the key, in the words W&B's validator would use."""
    path = ".".join([where, *map(str, error.path)]).strip(".") or "sweep"
    kind, value = error.validator, error.validator_value
    if kind == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        keys = ", ".join(unexpected)
        return f"{path}: unknown key {keys} (allowed: {allowed})"
    if kind == "required":
        missing = error.message.split("'")[1]
        return f"{path}.{missing}: required" if path != "sweep" else f"{missing}: required"
    if kind == "anyOf" and path.endswith("early_terminate"):
        return f"{path}: hyperband needs min_iter, or max_iter and s"
    if kind == "enum":
        return f"{path}: expected one of {', '.join(map(str, value))}, got {error.instance!r}"
    if kind in ("type", "format"):
        wanted = {"integer": "an integer", "number": "a number", "string": "a string"}
        return f"{path}: expected {wanted.get(value, value)}, got {error.instance!r}"
    if kind in ("minimum", "exclusiveMinimum"):
        sign = ">=" if kind == "minimum" else ">"
        return f"{path}: must be {sign} {value}, got {error.instance!r}"
    if kind == "minProperties" or kind == "minItems":
        return f"{path}: must not be empty"
    if kind == "pattern" or kind == "propertyNames":
        return f"{path}: {error.instance!r} is not a valid parameter name ({NAME_PATTERN})"
    return f"{path}: {error.message}"


def form_of(body: dict) -> str | None:
    """The parameter form W&B matches ``body`` to: its ``distribution``, else inferred; "group"
    for nested parameters; None when nothing fits."""
    if "distribution" in body:
        return body["distribution"] if body["distribution"] in FORMS else None
    if "parameters" in body:
        return "group"
    if "value" in body:
        return "constant"
    if "values" in body:
        return "categorical_w_probabilities" if "probabilities" in body else "categorical"
    if "min" in body and "max" in body:
        bounds = (body["min"], body["max"])
        if all(isinstance(v, int) and not isinstance(v, bool) for v in bounds):
            return "int_uniform"
        if any(isinstance(v, float) for v in bounds):
            return "uniform"
    return None


def parameter_problems(name: str, body: Any, where: str = "parameters") -> list[str]:
    """What W&B refuses in one parameter (a group: in it and its children)."""
    path = f"{where}.{name}"
    if not isinstance(body, dict):
        return [f"{path}: expected a mapping, got {body!r}"]
    form = form_of(body)
    if form is None:
        if "distribution" in body:
            wanted = ", ".join(DISTRIBUTIONS)
            return [f"{path}.distribution: expected one of {wanted}, got {body['distribution']!r}"]
        return [f"{path}: needs value, values, min and max, a distribution, or parameters"]
    if form == "group":
        problems = _messages(body, GROUP, path)
        inner = body.get("parameters")
        if isinstance(inner, dict):
            problems += _messages(inner, {"propertyNames": {"pattern": NAME_PATTERN}}, path)
            for child, child_body in inner.items():
                problems += parameter_problems(str(child), child_body, f"{path}.parameters")
        return problems
    problems = [f"{m} (as {form})" for m in _messages(body, FORMS[form], path)]
    if problems:
        return problems
    if form in DEPRECATED:
        return [
            f"{path}: {form} takes base-e exponents as min/max; W&B refuses it, use "
            f"{form}_values with the limits themselves"
        ]
    if "min" in body and "max" in body and not body["min"] < body["max"]:
        problems.append(f"{path}: min {body['min']} is not less than max {body['max']}")
    if form == "categorical_w_probabilities":
        values, weights = body["values"], body["probabilities"]
        if len(values) != len(weights):
            problems.append(
                f"{path}.probabilities: {len(weights)} numbers for {len(values)} values"
            )
        elif not math.isclose(sum(weights), 1.0, rel_tol=1e-5, abs_tol=1e-8):
            problems.append(f"{path}.probabilities: must sum to 1, got {sum(weights):g}")
    return problems


def violations(data: Any) -> list[str]:
    """Every problem W&B's validator finds in a loaded sweep file; empty when W&B accepts it."""
    if not isinstance(data, dict):
        return [f"sweep: expected a mapping at the top level, got {type(data).__name__}"]
    problems = _messages(data, SCHEMA, "")
    parameters = data.get("parameters")
    if "parameters" not in data and not (data.get("scheduler") or {}).get("search_space"):
        problems.append("parameters: required")
    if isinstance(parameters, dict):
        for name, body in parameters.items():
            problems += parameter_problems(str(name), body, "parameters")
    if "metric" in data and "metrics" in data:
        problems.append("metric, metrics: give one, not both")
    if "metrics" in data and data.get("method", "custom") != "custom":
        problems.append("metrics: several metrics need method: custom")
    if "scheduler" in data:
        if "early_terminate" in data:
            problems.append("scheduler: cannot be used with early_terminate")
        if (data.get("controller") or {}).get("type") == "local":
            problems.append("scheduler: cannot be used with a local controller")
        if (data["scheduler"] or {}).get("engine") not in (None, "wandb"):
            problems.append("scheduler.engine: only wandb is available")
        if data.get("method") == "custom":
            problems.append("scheduler: method custom is not allowed with the wandb engine")
    return problems
