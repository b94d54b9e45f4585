"""The argv of a trial, built from the sweep's ``command:`` as ``wandb agent`` builds it.

W&B's default command is ``${env} ${interpreter} ${program} ${args}``. Each item of ``command``
is first stripped of ``${envvar:NAME}`` (the variable's value, or NAME when it is unset), then, if
the whole item is a macro, replaced by that macro's list (which may be empty: an unknown macro
vanishes); any other item is passed as written (``--lr=${lr}`` is not expanded by W&B either).

    ${env}                     /usr/bin/env
    ${interpreter}             the Python running albumgan (W&B: ``python`` from PATH, which
                               may be another Python than the one albumgan is installed in)
    ${program}                 the sweep's program (an absolute path here)
    ${args}                    --name=value ...
    ${args_no_hyphens}         name=value ...
    ${args_no_boolean_flags}   --name for True, nothing for False, --name=value otherwise
    ${args_no_equals}          --name value ...
    ${args_json}               one item: the values as JSON
    ${args_json_file}          a file holding that JSON (written in the trial's run directory)
    ${args_append_hydra}       +name=value ...    ${args_override_hydra}  ++name=value ...

Values are Python's ``str()`` of each value, as W&B's agent writes them (``--ema=False``,
``--noise_shape=[1, 1, 100]``, a group ``--optimizer={'lr': 0.1}``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from albumgan.gan_core.fileio import write_text

DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")
ARGS_JSON_FILE = "sweep-args.json"  # in the trial's run directory, for ${args_json_file}
_ENVVAR = re.compile(r"\$\{envvar:([A-Z0-9_]*)\}")


def build_argv(
    command: list | tuple | None, program: str | Path, args: dict[str, Any], run_dir: Path
) -> list[str]:
    """The trial's argv for ``command`` (W&B's default when None) with ``args`` (the run config,
    groups nested). Writes ``run_dir``/sweep-args.json when ``${args_json_file}`` is used."""
    items = [str(item) for item in (command or DEFAULT_COMMAND)]
    argv: list[str] = []
    for item in items:
        item = _ENVVAR.sub(lambda m: os.environ.get(m.group(1), m.group(1)), item)
        if item.startswith("${") and item.endswith("}"):
            argv += _macro(item[2:-1], program, args, run_dir)
        else:
            argv.append(item)
    return argv


def _macro(name: str, program: str | Path, args: dict[str, Any], run_dir: Path) -> list[str]:
    pairs = list(args.items())
    if name == "env":
        return [] if os.name == "nt" else ["/usr/bin/env"]
    if name == "interpreter":
        return [sys.executable]
    if name == "program":
        return [str(program)]
    if name == "args":
        return [f"--{k}={v}" for k, v in pairs]
    if name == "args_no_hyphens":
        return [f"{k}={v}" for k, v in pairs]
    if name == "args_no_equals":
        return [part for k, v in pairs for part in (f"--{k}", str(v))]
    if name == "args_no_boolean_flags":
        return [f"--{k}" if v is True else f"--{k}={v}" for k, v in pairs if v is not False]
    if name == "args_append_hydra":
        return [f"+{k}={v}" for k, v in pairs]
    if name == "args_override_hydra":
        return [f"++{k}={v}" for k, v in pairs]
    if name == "args_json":
        return [json.dumps(args)]
    if name == "args_json_file":
        path = run_dir / ARGS_JSON_FILE
        write_text(path, json.dumps(args))
        return [str(path)]
    return []  # an unknown macro: W&B's agent drops it
