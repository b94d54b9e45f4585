"""Which sweep file made a study: a study remembers it, and a changed file never reuses it.

    record = identity(data)            # the file's normalised content and its hash
    changes = differences(old, new)    # ["steps: 80 -> 400", "metric.name: kid -> fid"]
    problems = narrowings(old, new)    # [] when ``new`` only widens ``old``'s search space

``sweep run`` (``sweeps.runner``) stores the record in the study's user attributes when it
creates the study. Run again with a file whose normalised content differs (comments, key order
and YAML spelling do not count), it refuses, naming what changed: the old study's trials and
leaderboard answer the old file, not the new one. ``--study NEW`` starts a new study;
``--extend`` adds trials to the same study when the new file only widens the search space
(wider ``min``/``max`` ranges of a random or bayes sweep, a larger ``run_cap``); the study then
keeps the hash of every file it ran in ``sweep_history``. Adding values to a ``values`` list is
not a widening Optuna can take: it refuses new choices for a parameter of an existing study.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["HASH_KEY", "HISTORY_KEY", "differences", "identity", "narrowings"]

HASH_KEY = "sweep_hash"  # user attribute: the hash of the file that made (or last extended) it
FILE_KEY = "sweep_file"  # user attribute: that file's normalised content
HISTORY_KEY = "sweep_history"  # user attribute: every file it ran, oldest first, as hashes
# Forms whose values lie in [min, max]: a wider range holds every value of a narrower one.
_RANGES = {
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform_values",
    "inv_log_uniform_values",
    "q_log_uniform_values",
}


def normalised(data: Any) -> Any:
    """The file's mapping as JSON would hold it: key order and YAML spelling gone."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def identity(data: Any) -> dict[str, Any]:
    """The user attributes that name a sweep file: its normalised content and its hash."""
    content = normalised(data)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return {HASH_KEY: hashlib.sha256(text.encode()).hexdigest()[:16], FILE_KEY: content}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        flat = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _label(path: str) -> str:
    """``parameters.steps.value`` -> ``steps``; ``parameters.lr.max`` -> ``lr.max``."""
    if path.startswith("parameters."):
        path = path.removeprefix("parameters.").replace(".parameters.", ".")
        return path.removesuffix(".value")
    return path


_MISSING = object()  # a key one of the two files does not have


def _shown(value: Any) -> str:
    return "(none)" if value is _MISSING else json.dumps(value)


def differences(old: Any, new: Any) -> list[str]:
    """What changed between two files' contents, one ``key: old -> new`` per changed leaf."""
    before, after = _flat(normalised(old)), _flat(normalised(new))
    changed = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path, _MISSING), after.get(path, _MISSING)
        if a != b:
            changed.append(f"{_label(path)}: {_shown(a)} -> {_shown(b)}")
    return changed


def _leaves(parameters: Any, prefix: str = "") -> dict[str, dict]:
    """Every leaf parameter by its dotted name, groups flattened."""
    found = {}
    for name, body in (parameters or {}).items():
        path = f"{prefix}{name}"
        if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
            found.update(_leaves(body["parameters"], path + "."))
        elif isinstance(body, dict):
            found[path] = body
    return found


def _widening_problem(name: str, old: dict, new: dict, grid: bool) -> str | None:
    """Why parameter ``new`` cannot take the trials of ``old`` on (None when it can).

    Optuna stores each parameter's distribution with the study, and takes a changed one only
    when it is a range of the same kind: a categorical's choices (a ``values`` list, and every
    parameter of a grid, whose points are categorical choices) cannot change at all.
    """
    if normalised(new) == normalised(old):
        return None
    shown = f"{name}: {json.dumps(old)} -> {json.dumps(new)}"
    if grid or "values" in old or "values" in new or "value" in old or "value" in new:
        return f"{shown} (Optuna cannot change the choices of a parameter in an existing study)"
    if "min" not in new or "max" not in new or _form(new) not in _RANGES | {"range"}:
        return f"{shown} (only a range can widen)"
    others = {k: v for k, v in new.items() if k not in ("min", "max")}
    if others != {k: v for k, v in old.items() if k not in ("min", "max")}:
        return f"{shown} (another distribution: not the same draws)"
    if new["min"] > old.get("min", new["min"]) or new["max"] < old.get("max", new["max"]):
        return f"{shown} (narrower: earlier trials fall outside it)"
    return None


def _form(body: dict) -> str:
    return str(body.get("distribution") or ("range" if "min" in body else "choice"))


def narrowings(old: Any, new: Any) -> list[str]:
    """Why ``new`` is not only a wider search space than ``old`` (empty when it is).

    Allowed: wider ranges (``min``/``max``) of a random or bayes sweep's parameters, and a
    larger ``run_cap``. Anything else (the metric, the method, the program, a constant, a list
    of values, a grid's points, a parameter added or removed) changes what the study's finished
    trials mean, or is a change Optuna refuses in an existing study.
    """
    old, new = normalised(old), normalised(new)
    problems = []
    for key in sorted((old.keys() | new.keys()) - {"parameters", "run_cap"}):
        if old.get(key) != new.get(key):
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            problems.append(f"{key}: {_shown(a)} -> {_shown(b)}")
    if new.get("run_cap") is not None and (old.get("run_cap") or 0) > new["run_cap"]:
        problems.append(f"run_cap: {old['run_cap']} -> {new['run_cap']} (fewer trials)")
    grid = new.get("method") == "grid"
    before, after = _leaves(old.get("parameters")), _leaves(new.get("parameters"))
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            problems.append(f"{name}: no longer in the file (the study's trials used it)")
        elif name not in before:
            problems.append(f"{name}: a new parameter (the study's trials never set it)")
        elif problem := _widening_problem(name, before[name], after[name], grid):
            problems.append(problem)
    return problems


def claim(study, data: Any, metric: str, method: str, source: str, extend: bool = False) -> None:
    """Make ``study`` the study of this sweep file, or refuse.

    A new study records the file (``identity``), the metric, the method and the file's path,
    and names its objective after the metric (optuna-dashboard shows it). An existing one made
    by the same content is used as it is. One made by other content is refused naming the
    changes, unless ``extend`` and the new file only widens the search space: then the study
    goes on under the new file, and ``sweep_history`` keeps the hashes of both. The study's
    metric, method and first file are never rewritten.

    Raises:
        SweepError: the file differs from the study's (the message says what changed and the
            ways on), or ``extend`` with a change that is not a widening.
    """
    import warnings

    import optuna

    from albumgan.sweeps.spec import SweepError

    attrs = study.user_attrs
    record = identity(data)
    stored_metric = attrs.get("metric")
    if stored_metric not in (None, metric):  # a study of another metric: its values are not ours
        raise SweepError(
            f"{source}: study {study.study_name!r} optimizes {stored_metric}, this file "
            f"{metric}; run it as a new study with --study NAME"
        )
    if attrs.get(HASH_KEY) == record[HASH_KEY]:
        return
    if FILE_KEY in attrs:  # made by another file
        changes = "; ".join(differences(attrs[FILE_KEY], data)) or "formatting only"
        if not extend:
            raise SweepError(
                f"{source} is not the file study {study.study_name!r} was made with "
                f"({changes}); run it as a new study with --study NAME, or, if it only widens "
                "the search space, add its trials to this study with --extend"
            )
        problems = narrowings(attrs[FILE_KEY], data)
        if problems:
            raise SweepError(
                f"--extend: {source} changes more than the search space of study "
                f"{study.study_name!r} ({'; '.join(problems)}); run it as a new study with "
                "--study NAME"
            )
    # New, extended, or made before studies remembered their file (adopted as it runs now).
    for key, value in (("metric", metric), ("method", method), ("spec", source)):
        if key not in attrs:
            study.set_user_attr(key, value)
    history = [*attrs.get(HISTORY_KEY, []), record[HASH_KEY]]
    for key, value in (*record.items(), (HISTORY_KEY, history)):
        study.set_user_attr(key, value)
    if not study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric])
