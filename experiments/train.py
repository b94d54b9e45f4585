"""THE training entry point.

    python -m albumgan.experiments.train --config smoke --steps=50
    python experiments/train.py --batch_size=32 --noise_shape="[1, 1, 128]"  # as wandb agent
    albumgan train --config modern --run-dir runs/my-run                         # same arguments

Arguments besides config keys: ``--config PATH|PRESET``, ``--config-json FILE`` (``wandb agent``'s
``${args_json_file}``), ``--run-dir DIR`` (resumed if it exists), ``--resume RUN_DIR`` (continue
that run) or ``--resume`` alone (the newest unfinished run of the same name; none is an error),
``--dry-run`` (print the resolved config and parameter counts),
``--wandb`` (log to Weights & Biases; automatic under ``wandb agent``), ``--pack-file FILE``
(train several runs of one shape as one packed program: a JSON ``{"members": [{"run_dir": DIR,
"argv": [...]}, ...]}``, each argv read as this command's; how ``albumgan sweep run --pack K``
trains K trials at once).
Every other ``--key=value`` is a TrainConfig key (``--help`` lists them).

An existing run (``--resume RUN_DIR``, ``--run-dir`` of a run that has a config.yaml) goes on
from its own config.yaml: the flags change only the keys they name (steps, intervals and the
other resumable keys; any other is refused), and ``--config`` is not applied to it.

Every argument form a sweep's ``command:`` can produce is read (``sweeps.command``):
``--key=value``, ``--key value``, a bare ``--key`` (True), ``key=value`` (``${args_no_hyphens}``),
``+key=value`` and ``++key=value`` (Hydra macros), a JSON object (``${args_json}``) and the path
of a ``.json`` file (``${args_json_file}``). ``$ALBUMGAN_RUN_DIR`` (set by ``albumgan sweep run``
for each trial, as W&B's agent passes its own settings in the environment) is the default
``--run-dir``, ``ALBUMGAN_WANDB=1`` means ``--wandb``, and ``ALBUMGAN_BEST_METRIC`` /
``ALBUMGAN_BEST_GOAL`` (the sweep's ``metric``) give ``best_metric`` and ``best_goal``.

Backend: ``--backend=auto|tensorflow|jax`` (a config key). ``auto`` takes JAX when it sees a
GPU, else TensorFlow, else JAX on the CPU; it is resolved here, before Keras is imported, and the
run's status.json records what ran (``gan_core.backend``).

Exit codes: 0 completed, 2 bad arguments, config, backend, run directory (locked by another
trainer, not writable, unreadable config or checkpoints) or an I/O error while training, 3
diverged (NaN/Inf loss), 128+signal when stopped by SIGTERM (143) or SIGINT (130) after writing a
checkpoint.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# Run as a file (`python experiments/train.py`, what `wandb agent` runs) in a source checkout that
# may not be installed: make its `albumgan` importable. An installed copy needs nothing.
_CHECKOUT = Path(__file__).resolve().parent.parent
if __package__ in (None, "") and (_CHECKOUT / "albumgan" / "__init__.py").is_file():
    sys.path.insert(0, str(_CHECKOUT))

import yaml  # noqa: E402

from albumgan.gan_core.config import (  # noqa: E402
    BARE_MEANS_TRUE,
    KEYS,
    TRUE_OR_FALSE,
    ConfigError,
    TrainConfig,
    build_config,
    load_json,
    load_yaml,
    overrides_from_mapping,
    parse_bool,
    parse_value,
)
from albumgan.gan_core.contract import handles_errors, plain  # noqa: E402

_OPTIONS = ("config", "config_json", "run_dir", "resume", "dry_run", "help", "h", "pack_file")


@dataclass(frozen=True)
class Options:
    """Arguments that steer the command rather than describe the run."""

    run_dir: str | None = None
    resume: bool = False
    pack_file: str | None = None
    dry_run: bool = False
    wandb: bool = False  # log to W&B (automatic under `wandb agent`)


def parse_args(argv: list[str]) -> tuple[TrainConfig, Options]:
    """argv -> (config, options). Layers: defaults -> --config -> --config-json -> flags.

    Raises:
        ConfigError: unknown key, bad value or malformed argument.
    """
    argv = ["--help" if a == "-h" else a for a in argv]
    pairs = split_flags(argv)
    options: dict[str, object] = {}
    flags: dict[str, object] = {}
    yaml_path = json_path = json_text = None
    for key, value in pairs:
        if key == "config":
            yaml_path = _require(key, value)
        elif key == "config_json":
            json_path = _require(key, value)
        elif key == ARGS_JSON:
            json_text = value
        elif key == "run_dir":
            options["run_dir"] = _require(key, value)
        elif key == "pack_file":
            options["pack_file"] = _require(key, value)
        elif key == "resume":
            _resume_option(value, options)
        elif key in ("dry_run", "help", "wandb"):
            options[key] = value is None or parse_bool(key, value)
        elif key not in KEYS and (group := _group(value)) is not None:
            flags.update(overrides_from_mapping(group, f"--{key}"))  # a W&B parameter group
        elif key in KEYS:
            if value is None and key not in BARE_MEANS_TRUE:
                raise ConfigError(f"{key}: missing value; use --{key}=VALUE")
            flags[key] = parse_value(key, True if value is None else value)
        else:
            raise ConfigError(
                f"unknown config key {key!r}; allowed keys: {', '.join(KEYS)} "
                f"(and --config, --config-json, --run-dir, --resume, --dry-run, --wandb)"
            )
    if options.pop("help", False):
        raise _Help()
    # A sweep's metric (``albumgan sweep run`` sets these for each trial): which evaluation keeps
    # the best checkpoint, unless the config says otherwise.
    named: dict[str, object] = {
        key: os.environ[variable]
        for key, variable in BEST_VARIABLES.items()
        if variable in os.environ
    }
    if json_path:
        named.update(load_json(json_path))
    if json_text:
        named.update(_json_argument(json_text))
    named.update(flags)
    preset = load_yaml(yaml_path) if yaml_path else {}
    # A sweep trial's run directory and W&B switch come in the environment: its argv is exactly
    # what the sweep's command builds, as under `wandb agent`.
    if os.environ.get("ALBUMGAN_RUN_DIR"):
        options.setdefault("run_dir", os.environ["ALBUMGAN_RUN_DIR"])
    if os.environ.get("ALBUMGAN_WANDB") == "1":
        options.setdefault("wandb", True)
    if options.get("resume") and not options.get("run_dir"):  # the newest unfinished one
        options["run_dir"] = str(_resumable(build_config({**preset, **named})))
    # An existing run goes on from its own config.yaml: the arguments change only the keys they
    # name (``--config`` names none), and training checks those are resumable.
    stored = _stored_config(options.get("run_dir"))
    if stored is None:
        return build_config({**preset, **named}), Options(**options)
    ignored = sorted(k for k, v in preset.items() if k not in named and stored.get(k) != v)
    if ignored:
        print(
            f"note: {options['run_dir']} goes on from its own config.yaml; --config {yaml_path} "
            f"is not applied to {', '.join(ignored)} (give a key as a flag to change it)",
            file=sys.stderr,
        )
    return build_config({**stored, **named}), Options(**options)


def _resume_option(value: str | None, options: dict[str, object]) -> None:
    """``--resume`` (the newest unfinished run of this name), ``--resume RUN_DIR`` (that run),
    or a boolean spelling (``--resume=false``)."""
    if value is not None and value.strip().lower() not in TRUE_OR_FALSE:
        if not (Path(value) / "config.yaml").is_file():
            raise ConfigError(f"--resume {value}: not a run directory (no config.yaml in it)")
        options["resume"], options["run_dir"] = True, value
        return
    options["resume"] = value is None or parse_bool("resume", value)


def _resumable(cfg: TrainConfig) -> Path:
    """The newest unfinished run of ``cfg``'s name, for ``--resume`` alone."""
    from albumgan.gan_core.rundir import find_resumable

    name = cfg.name or "run"
    found = find_resumable(Path(cfg.runs_dir), name)
    if found is None:
        raise ConfigError(
            f"--resume: no unfinished run named {name!r} in {cfg.runs_dir}/ to resume; leave "
            "out --resume to start a new run, or give one: --resume RUN_DIR"
        )
    return found


def _stored_config(run_dir: object) -> dict[str, object] | None:
    """The config an existing run directory was trained with, as overrides; None for a new one.

    Raises:
        RunDirError: its config.yaml cannot be read or is not a valid config.
    """
    if not run_dir or not (Path(str(run_dir)) / "config.yaml").is_file():
        return None
    from albumgan.gan_core.rundir import read_config

    return read_config(Path(str(run_dir))).to_dict()


def split_flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """``--a=1 --b 2 --c`` -> [("a", "1"), ("b", "2"), ("c", None)] with dashes -> underscores.

    A value that itself starts with ``--`` is never taken as the previous flag's value. Without
    dashes: ``key=value`` and ``+key=value`` are flags, ``{...}`` is JSON (``ARGS_JSON``) and
    ``FILE.json`` a ``--config-json`` file.
    """
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            pairs.append(_bare_argument(arg))
            i += 1
            continue
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
            pairs.append((key.replace("-", "_"), value))
            i += 1
            continue
        key = body.replace("-", "_")
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if nxt is not None and not nxt.startswith("--"):
            pairs.append((key, nxt))
            i += 2
        else:
            pairs.append((key, None))
            i += 1
    return pairs


BEST_VARIABLES = {"best_metric": "ALBUMGAN_BEST_METRIC", "best_goal": "ALBUMGAN_BEST_GOAL"}
ARGS_JSON = "<json>"  # the key split_flags gives a JSON-object argument


def _bare_argument(arg: str) -> tuple[str, str | None]:
    if arg.lstrip().startswith("{"):
        return ARGS_JSON, arg
    if "=" in arg and not arg.startswith("-"):
        key, value = arg.lstrip("+").split("=", 1)
        return key.replace("-", "_"), value
    if arg.endswith(".json"):
        return "config_json", arg
    raise ConfigError(f"unexpected argument {arg!r}; expected --key=value")


def _group(value: str | None) -> dict | None:
    """A W&B parameter group's value, as ``wandb agent`` writes it (``{'lr_g': 0.001}``, Python's
    repr) or as JSON; None for anything else."""
    if not value or not value.lstrip().startswith("{"):
        return None
    for read in (ast.literal_eval, json.loads):
        try:
            group = read(value)
        except (ValueError, SyntaxError):
            continue
        if isinstance(group, dict):
            return group
    return None


def _json_argument(text: str) -> dict[str, object]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"JSON argument: not valid JSON ({exc})") from exc
    return overrides_from_mapping(data, "JSON argument")


def _require(key: str, value: str | None) -> str:
    if not value:
        raise ConfigError(f"--{key.replace('_', '-')}: missing value")
    return value


class _Help(Exception):
    pass


def _usage() -> str:
    defaults = TrainConfig().to_dict()
    keys = "\n".join(f"  --{k}={defaults[k]!r}" for k in KEYS)
    return f"{plain(__doc__)}\nConfig keys and defaults:\n{keys}\n"


@handles_errors
def main(argv: list[str] | None = None) -> int:
    from albumgan.sweeps.children import die_with_parent

    die_with_parent()  # started by a sweep worker: stop (checkpoint, exit 143) when it dies
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, options = parse_args(argv)
    except _Help:
        print(_usage())
        return 0
    if options.dry_run:
        from albumgan.data_tools.registry import DatasetError
        from albumgan.gan_core.backend import activate

        try:
            images, problem = _dataset_check(cfg), None
        except DatasetError as exc:  # still show the config and the models, then say it
            images, problem = "none (see the error below)", exc
        _dry_run(cfg, activate(cfg.backend), images)  # KERAS_BACKEND set before Keras loads
        if problem is not None:
            raise problem  # exit 2: the run itself would stop here
        return 0

    from albumgan import load_data
    from albumgan.gan_core.training import train
    from albumgan.sweeps.wandb_logger import WandbLogger, wanted

    logging = wanted(options.wandb)
    handed_out: list[int] = []

    def loggers(*_) -> list:
        """One W&B logger per run (a packed run: per member), except under ``wandb agent``,
        which owns one W&B run: there only the first member logs."""
        if not logging or (handed_out and os.environ.get("WANDB_SWEEP_ID")):
            return []
        handed_out.append(1)
        return [WandbLogger()]

    if options.pack_file:
        return _train_pack_file(options.pack_file, loggers)
    data = load_data(cfg)
    result = train(cfg, data, loggers, run_dir=options.run_dir, resume=options.resume)
    print(f"run_dir: {result.run_dir}")
    for member in result.members:  # a packed run: each seed's own run directory
        print(f"  {member.run_dir.name}: {member.state} at step {member.step}")
    print(f"state: {result.state} at step {result.step} ({result.backend})")
    return result.exit_code


def _train_pack_file(path: str, callbacks) -> int:
    """Train the members a ``--pack-file`` lists as one pack; exit with the worst member's code."""
    from albumgan import load_data
    from albumgan.gan_core.packing import train_pack

    try:
        listed = json.loads(Path(path).read_text(encoding="utf-8"))["members"]
        members = [(parse_args(list(m["argv"]))[0], Path(m["run_dir"])) for m in listed]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"pack-file: cannot read {path}: {exc}") from exc
    if not members:
        raise ConfigError(f"pack-file: {path} lists no members")
    results = train_pack(members, load_data(members[0][0]), callbacks)
    for result in results:
        print(f"run_dir: {result.run_dir}: {result.state} at step {result.step}")
    return max(result.exit_code for result in results)


def _dataset_check(cfg: TrainConfig) -> str:
    """What a dry run says of the dataset: its folder and image count (no image decoded).

    Raises:
        DatasetError: the dataset cannot be found or holds no image.
    """
    from albumgan.data_tools.registry import (
        IMAGE_SUFFIXES,
        DatasetError,
        list_images,
        resolve,
    )

    if cfg.dataset == "synthetic":
        return "synthetic (generated on first use)"
    from albumgan.gan_core.fileio import default_cache_dir

    folder = resolve(cfg.dataset, cfg.data_dir, Path(cfg.cache_dir or default_cache_dir()))
    count = len(list_images(folder))
    if not count:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DatasetError(f"dataset {cfg.dataset!r}: no images ({suffixes}) in {folder}")
    return f"{count} in {folder}"


def _dry_run(cfg: TrainConfig, backend_name: str, images: str) -> int:
    from albumgan.gan_core.models import build_discriminator, build_generator
    from albumgan.gan_core.precision import resolve_precision

    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    print(f"dataset_images: {images}")
    precision = resolve_precision(cfg.precision, backend_name)
    print(f"resolved_backend: {backend_name}")
    print(f"resolved_precision: {precision}")
    print(f"generator_params: {build_generator(cfg).count_params()}")
    print(f"discriminator_params: {build_discriminator(cfg).count_params()}")
    return 0


if __name__ == "__main__":
    from albumgan.experiments import quiet

    quiet.install()  # before TensorFlow loads: no framework notices on stderr, errors kept
    sys.exit(main())
