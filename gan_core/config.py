"""TrainConfig: the one typed, frozen description of a training run, and its parsers.

Layers, last wins: code defaults (the dataclass) -> a YAML preset (``--config PATH``) -> a JSON
file (``--config-json FILE``, what ``wandb agent`` writes for ``${args_json_file}``) ->
``--key=value`` flags. Every value is normalised here, at the edge; inside, values are typed.

The forms ``wandb agent`` actually sends are all accepted::

    --noise_shape=[1, 1, 100]   --noise_shape=1x1x100   --noise_shape=100
    --ema=False   --ema=0.999   --diffaugment=True   --batch_size 32   --ema (bare boolean flag)

Key names are a public contract (sweep YAMLs use them): rename nothing without an alias.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from gan_core.backend import BACKENDS

ARCHS = ("seed", "dcgan")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
EXTRACTORS = ("album", "inception")
DIFFAUGMENT_OPS = ("color", "translation", "cutout")
DEFAULT_EMA_DECAY = 0.999
PRESETS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "configs"


class ConfigError(ValueError):
    """A user error in a config: bad key or bad value. The CLI turns it into exit code 2."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for the one-line
    errors the commands print."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults reproduce the seed notebook's first run.

    Attributes are grouped as data / model / optimisation / bookkeeping; all are flat keys so that
    sweep files can address them directly (``--lr_d=0.0002``).
    """

    # --- data -----------------------------------------------------------------------------------
    dataset: str = "synthetic"  # synthetic | gaon | crawled | a folder of images
    resolution: int = 64  # square side in pixels, a power of two in 16..512
    # --- model ----------------------------------------------------------------------------------
    arch: str = "seed"  # seed: the notebook's networks layer for layer; dcgan: Radford et al.
    noise_shape: tuple[int, ...] = (1, 1, 100)  # (N,) or (1, 1, N)
    g_width: int = 64  # channels of the generator's last up-sampling block
    d_width: int = 64  # channels of the discriminator's first block
    # --- optimisation ---------------------------------------------------------------------------
    batch_size: int = 16
    steps: int = 10_000
    lr_g: float = 0.00015  # the seed: Adam(1.5e-4, beta_1=0.5) for the generator...
    lr_d: float = 0.0002  # ...and Adam(2e-4, beta_1=0.5) for the discriminator
    beta1: float = 0.5
    beta2: float = 0.999
    label_noise: float = 0.2  # real labels ~ U[1-x, 1], fake labels ~ U[0, x]
    diffaugment: str = ""  # "" (off) or a comma list of color,translation,cutout
    ema: float = 0.0  # EMA decay of the generator weights; 0 = no EMA generator
    precision: str = "auto"  # auto: bf16 where the hardware runs it natively, else float32
    backend: str = "auto"  # auto | tensorflow | jax (gan_core.backend says what auto picks)
    seed: int = 0
    steps_per_execution: int = 0  # train steps per compiled call; 0 = auto
    # --- bookkeeping ----------------------------------------------------------------------------
    name: str = ""  # run name; defaults to the preset's file name, else "run"
    log_every: int = 100
    sample_every: int = 100
    checkpoint_every: int = 500
    eval_every: int = 0  # score KID/FID/precision/recall every N steps; 0 = off
    eval_extractor: str = "album"  # album (offline) | inception (Keras InceptionV3 weights)
    eval_samples: int = 0  # generated images per evaluation; 0 = as many as real, at most 1000
    inception_weights: str = ""  # weights file for eval_extractor=inception
    keep_checkpoints: int = 3
    grid_size: int = 8  # sample grids are grid_size x grid_size images
    runs_dir: str = "runs"
    cache_dir: str = ""  # "" = $ALBUMGAN_CACHE or ~/.cache/albumgan
    data_dir: str = ""  # dataset registry root; "" = $ALBUMGAN_DATA or ./data

    def __post_init__(self) -> None:
        # Notebook users write TrainConfig(ema=True, noise_shape=[1, 1, 100]): normalise every
        # field through the same parser the CLI uses, then check cross-field rules.
        for f in fields(self):
            object.__setattr__(self, f.name, parse_value(f.name, getattr(self, f.name)))
        _validate(self)

    @property
    def noise_dim(self) -> int:
        return self.noise_shape[-1]

    @property
    def diffaugment_ops(self) -> tuple[str, ...]:
        return tuple(op for op in self.diffaugment.split(",") if op)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), ready for YAML/JSON."""
        out = dataclasses.asdict(self)
        out["noise_shape"] = list(self.noise_shape)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` parsed like flags (strings allowed) and validated."""
        return dataclasses.replace(self, **{k: parse_value(k, v) for k, v in changes.items()})


KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
_TYPES: dict[str, Any] = {f.name: f.type for f in fields(TrainConfig)}
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def _allowed_keys() -> str:
    return ", ".join(KEYS)


# ------------------------------------------------------------------------------------------------
# Value parsing: one function per kind of value, all raising ConfigError naming the key.
# ------------------------------------------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", "null", ""}


def _parse_int(key: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{key}: expected an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)  # "1e4" is how YAML/W&B sometimes write 10000
            except ValueError:
                pass
            else:
                if value.is_integer():
                    return int(value)
    raise ConfigError(f"{key}: expected an integer, got {raw!r}")


def _parse_float(key: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"{key}: expected a number, got {raw!r}")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected a number, got {raw!r}")


def _parse_noise_shape(key: str, raw: Any) -> tuple[int, ...]:
    """Accepts [1, 1, 100], "[1, 1, 100]", "(1,1,100)", "1x1x100", "100", 100."""
    items: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        if "x" in text.lower() and not text.startswith(("[", "(")):
            items = text.lower().split("x")
        else:
            try:
                items = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                items = None
    if isinstance(items, (int, str)) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{key}: expected N, 1x1xN or [1, 1, N], got {raw!r}")
    shape = tuple(_parse_int(key, item) for item in items)
    if len(shape) not in (1, 3) or (len(shape) == 3 and shape[:2] != (1, 1)):
        raise ConfigError(f"{key}: expected N, 1x1xN or [1, 1, N], got {raw!r}")
    if shape[-1] < 1:
        raise ConfigError(f"{key}: noise size must be >= 1, got {raw!r}")
    return shape


def _parse_ema(key: str, raw: Any) -> float:
    """False/0/off -> 0.0 (no EMA); True -> the default decay; a number in [0, 1) -> that decay."""
    if isinstance(raw, bool):
        return DEFAULT_EMA_DECAY if raw else 0.0
    if isinstance(raw, str) and raw.strip().lower() in _TRUE - {"1"}:
        return DEFAULT_EMA_DECAY
    if isinstance(raw, str) and raw.strip().lower() in _FALSE:
        return 0.0
    value = _parse_float(key, raw)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}: expected False, True or a decay in [0, 1), got {raw!r}")
    return value


def _parse_diffaugment(key: str, raw: Any) -> str:
    """False/"" -> "" (off); True -> all ops; "color,cutout" or a list -> those ops, validated."""
    if isinstance(raw, bool):
        return ",".join(DIFFAUGMENT_OPS) if raw else ""
    if isinstance(raw, (list, tuple)):
        ops = [str(op).strip().lower() for op in raw]
    elif isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE or text == "all":
            return ",".join(DIFFAUGMENT_OPS)
        if text in _FALSE:
            return ""
        ops = [op.strip() for op in text.strip("[]()").replace("'", "").split(",")]
    else:
        raise ConfigError(
            f"{key}: expected True/False or a list of {DIFFAUGMENT_OPS}, got {raw!r}"
        )
    ops = [op for op in ops if op]
    unknown = [op for op in ops if op not in DIFFAUGMENT_OPS]
    if unknown:
        raise ConfigError(
            f"{key}: unknown op {unknown[0]!r}; allowed: {', '.join(DIFFAUGMENT_OPS)}"
        )
    return ",".join(dict.fromkeys(ops))


def _parse_choice(key: str, raw: Any, choices: tuple[str, ...]) -> str:
    text = str(raw).strip()
    if text not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {raw!r}")
    return text


def _parse_str(key: str, raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, (dict, list)):
        raise ConfigError(f"{key}: expected a string, got {raw!r}")
    return str(raw)


def parse_value(key: str, raw: Any) -> Any:
    """Normalise one raw value (from YAML, JSON or argv) for ``key``.

    Raises:
        ConfigError: unknown key or a value of the wrong kind, naming the key and what is allowed.
    """
    if key not in _TYPES:
        raise ConfigError(f"unknown config key {key!r}; allowed keys: {_allowed_keys()}")
    if key == "noise_shape":
        return _parse_noise_shape(key, raw)
    if key == "ema":
        return _parse_ema(key, raw)
    if key == "diffaugment":
        return _parse_diffaugment(key, raw)
    if key == "arch":
        return _parse_choice(key, raw, ARCHS)
    if key == "precision":
        return _parse_choice(key, raw, PRECISIONS)
    if key == "backend":
        return _parse_choice(key, raw, BACKENDS)
    if key == "eval_extractor":
        return _parse_choice(key, raw, EXTRACTORS)
    kind = _TYPES[key]
    if kind in ("int", int):
        return _parse_int(key, raw)
    if kind in ("float", float):
        return _parse_float(key, raw)
    return _parse_str(key, raw)


def _validate(cfg: TrainConfig) -> None:
    """Cross-field and range checks; messages say what was expected and what came."""
    res = cfg.resolution
    if res < 16 or res > 512 or res & (res - 1):
        raise ConfigError(f"resolution: expected a power of two in 16..512, got {res}")
    positive = ("batch_size", "steps", "g_width", "d_width", "grid_size", "keep_checkpoints")
    for key in positive:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}: expected >= 1, got {getattr(cfg, key)}")
    for key in (
        "log_every",
        "sample_every",
        "checkpoint_every",
        "eval_every",
        "steps_per_execution",
    ):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key}: expected >= 0 (0 = off/auto), got {getattr(cfg, key)}")
    for key in ("lr_g", "lr_d"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key}: expected > 0, got {getattr(cfg, key)}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"{key}: expected in [0, 1), got {getattr(cfg, key)}")
    if not 0 <= cfg.label_noise < 0.5:
        raise ConfigError(f"label_noise: expected in [0, 0.5), got {cfg.label_noise}")
    if not cfg.dataset:
        raise ConfigError("dataset: expected synthetic, gaon, crawled or a folder path, got ''")


# ------------------------------------------------------------------------------------------------
# Layers: defaults -> YAML -> JSON -> flags.
# ------------------------------------------------------------------------------------------------


def _unwrap(value: Any) -> Any:
    """W&B sometimes nests values as {"value": v}; take the value."""
    if isinstance(value, dict) and set(value) == {"value"}:
        return value["value"]
    return value


def overrides_from_mapping(mapping: Any, source: str) -> dict[str, Any]:
    """Parse every entry of a YAML/JSON mapping; unknown keys fail naming ``source``."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError(
            f"{source}: expected a mapping of config keys, got {type(mapping).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        key = str(key).replace("-", "_")
        if key not in _TYPES:
            raise ConfigError(
                f"unknown config key {key!r} in {source}; allowed keys: {_allowed_keys()}"
            )
        out[key] = parse_value(key, _unwrap(value))
    return out


def resolve_preset(path_or_name: str) -> Path:
    """A YAML path, or the bare name of a preset in experiments/configs (``smoke``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    preset = PRESETS_DIR / f"{path_or_name}.yaml"
    if preset.is_file():
        return preset
    names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
    raise ConfigError(f"config: no such file {path_or_name!r}; presets: {names}")


def load_yaml(path_or_name: str) -> dict[str, Any]:
    path = resolve_preset(path_or_name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    overrides = overrides_from_mapping(data, str(path))
    overrides.setdefault("name", path.stem)
    return overrides


def load_json(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config-json: no such file {path!r}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config-json: {path} is not valid JSON: {exc}") from exc
    return overrides_from_mapping(data, path)


def build_config(
    overrides: dict[str, Any] | None = None, base: TrainConfig | None = None
) -> TrainConfig:
    """Apply already-parsed overrides on top of ``base`` (or the defaults) and validate."""
    values = dict(_DEFAULTS) if base is None else base.to_dict()
    values.update(overrides or {})
    values["noise_shape"] = tuple(values["noise_shape"])
    try:
        return TrainConfig(**values)
    except TypeError as exc:  # pragma: no cover - guarded by overrides_from_mapping
        raise ConfigError(str(exc)) from exc


# Keys that may come as a bare ``--key`` (``${args_no_boolean_flags}``), meaning True.
BARE_FLAG_KEYS = ("ema", "diffaugment")


def parse_bool(key: str, raw: Any) -> bool:
    """True/False in any of the spellings YAML, JSON and ``wandb agent`` use."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key}: expected true or false, got {raw!r}")


def split_flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """``--a=1 --b 2 --c`` -> [("a", "1"), ("b", "2"), ("c", None)] with dashes -> underscores.

    A value that itself starts with ``--`` is never taken as the previous flag's value.
    """
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"unexpected argument {arg!r}; expected --key=value")
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
