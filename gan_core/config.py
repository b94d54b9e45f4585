"""TrainConfig: the one typed, frozen description of a training run, and its parsers.

Layers, last wins: code defaults (the dataclass) -> a YAML preset (``--config PATH``) -> a JSON
file (``--config-json FILE``, what ``wandb agent`` writes for ``${args_json_file}``) ->
``--key=value`` flags. Every value is normalised here, at the edge; inside, values are typed.

Each key's rules sit with its field (``_key``): the parser (type, allowed values, range), whether
a resumed run may change it, and whether a bare ``--key`` means True. The forms ``wandb agent``
actually sends are all accepted::

    --noise_shape=[1, 1, 100]   --noise_shape=1x1x100   --noise_shape=100
    --ema=False   --ema=0.999   --diffaugment=True   --batch_size 32   --ema (bare boolean flag)

Key names are a public contract (sweep YAMLs use them): rename nothing without an alias.
Splitting argv into flags is the entry point's job (``experiments/train.py``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from albumgan.gan_core.backend import BACKENDS
from albumgan.gan_core.contract import EXTRACTORS, GOALS, PRIMARY_SCORE, SCORES, AlbumganError
from albumgan.gan_core.fileio import safe_yaml

ARCHS = ("seed", "dcgan")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
DIFFAUGMENT_OPS = ("color", "translation", "cutout")
# The small-data GAN toolbox (README "Recipes"); each key's first choice is the seed's behaviour.
GAN_LOSSES = ("bce", "nonsaturating", "hinge")
D_NORMS = ("batch", "spectral", "none")
AUGMENT_P = ("fixed", "ada")
LR_SCHEDULES = ("constant", "linear", "cosine")
DEFAULT_EMA_DECAY = 0.999
PRESETS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "configs"


class ConfigError(AlbumganError):
    """A user error in a config: bad key or bad value. The CLI turns it into exit code 2."""


# ------------------------------------------------------------------------------------------------
# Value parsers: ``parse(key, raw) -> value``, raising ConfigError naming the key and what is
# allowed. The factories below add ranges and choices.
# ------------------------------------------------------------------------------------------------

Parser = Callable[[str, Any], Any]
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", "null", ""}
TRUE_OR_FALSE = frozenset(_TRUE | _FALSE)  # every spelling parse_bool reads


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


def _str(key: str, raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, (dict, list)):
        raise ConfigError(f"{key}: expected a string, got {raw!r}")
    return str(raw)


def _int(minimum: int, meaning_of_zero: str = "") -> Parser:
    """An integer >= ``minimum``; ``meaning_of_zero`` says what 0 does where 0 is allowed."""
    note = f" (0 = {meaning_of_zero})" if meaning_of_zero else ""

    def parse(key: str, raw: Any) -> int:
        value = _parse_int(key, raw)
        if value < minimum:
            raise ConfigError(f"{key}: expected >= {minimum}{note}, got {value}")
        return value

    return parse


def _positive(key: str, raw: Any) -> float:
    value = _parse_float(key, raw)
    if not value > 0:
        raise ConfigError(f"{key}: expected > 0, got {value}")
    return value


def _fraction_below(limit: float) -> Parser:
    """A number in [0, ``limit``)."""

    def parse(key: str, raw: Any) -> float:
        value = _parse_float(key, raw)
        if not 0 <= value < limit:
            raise ConfigError(f"{key}: expected in [0, {limit:g}), got {value}")
        return value

    return parse


def _fraction_between(key: str, raw: Any) -> float:
    """A number strictly between 0 and 1."""
    value = _parse_float(key, raw)
    if not 0 < value < 1:
        raise ConfigError(f"{key}: expected in (0, 1), got {value}")
    return value


def _non_negative(key: str, raw: Any) -> float:
    value = _parse_float(key, raw)
    if not value >= 0:
        raise ConfigError(f"{key}: expected >= 0 (0 = off), got {value}")
    return value


def _choice(choices: tuple[str, ...]) -> Parser:
    def parse(key: str, raw: Any) -> str:
        text = str(raw).strip()
        if text not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {raw!r}")
        return text

    return parse


def _resolution(key: str, raw: Any) -> int:
    value = _parse_int(key, raw)
    if value < 16 or value > 512 or value & (value - 1):
        raise ConfigError(f"{key}: expected a power of two in 16..512, got {value}")
    return value


def _dataset(key: str, raw: Any) -> str:
    value = _str(key, raw)
    if not value:
        raise ConfigError(f"{key}: expected synthetic, gaon, crawled or a folder path, got ''")
    return value


def _noise_shape(key: str, raw: Any) -> tuple[int, ...]:
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


def _seed(key: str, raw: Any) -> int | tuple[int, ...]:
    """One seed (an integer), or the seeds of a packed run: ``[0, 1, 2, 3]``, ``"[0,1,2,3]"``,
    ``"0,1,2,3"`` or a tuple. A list of one seed is that seed: a plain run."""
    items: Any = raw
    if isinstance(raw, str) and ("," in raw or raw.strip().startswith(("[", "("))):
        text = raw.strip().strip("[]()")
        items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not isinstance(items, (list, tuple)):
        return _parse_int(key, raw)
    seeds = tuple(_parse_int(key, item) for item in items)
    if not seeds:
        raise ConfigError(f"{key}: expected an integer or a list of integers, got {raw!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{key}: each seed of a packed run must differ, got {list(seeds)}")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"{key}: the seeds of a packed run must be >= 0, got {list(seeds)}")
    return seeds[0] if len(seeds) == 1 else seeds


def _ema(key: str, raw: Any) -> float:
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


def _diffaugment(key: str, raw: Any) -> str:
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


# ------------------------------------------------------------------------------------------------
# The config: one field per key, each with its rule.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRule:
    """How one config key is read and what may happen to it."""

    parse: Parser
    resumable: bool = False  # may differ when a run is resumed: it changes how, not what
    bare_means_true: bool = False  # a bare ``--key`` (``${args_no_boolean_flags}``) means True


def _key(default: Any, parse: Parser, resumable: bool = False, bare_means_true: bool = False):
    return field(default=default, metadata={"rule": KeyRule(parse, resumable, bare_means_true)})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults reproduce the seed notebook's first run.

    Attributes are grouped as data / model / optimisation / bookkeeping; all are flat keys so that
    sweep files can address them directly (``--lr_d=0.0002``).
    """

    # --- data -----------------------------------------------------------------------------------
    dataset: str = _key("synthetic", _dataset)  # synthetic | gaon | crawled | a folder of images
    resolution: int = _key(64, _resolution)  # square side in pixels, a power of two in 16..512
    # --- model ----------------------------------------------------------------------------------
    # seed: the notebook's networks layer for layer; dcgan: Radford et al.
    arch: str = _key("seed", _choice(ARCHS))
    noise_shape: tuple[int, ...] = _key((1, 1, 100), _noise_shape)  # (N,) or (1, 1, N)
    g_width: int = _key(64, _int(1))  # channels of the generator's last up-sampling block
    d_width: int = _key(64, _int(1))  # channels of the discriminator's first block
    # --- optimisation ---------------------------------------------------------------------------
    batch_size: int = _key(16, _int(1))
    steps: int = _key(10_000, _int(1), resumable=True)  # a resumed run may train longer
    # The seed: Adam(1.5e-4, beta_1=0.5) for the generator, Adam(2e-4, beta_1=0.5) for D.
    lr_g: float = _key(0.00015, _positive)
    lr_d: float = _key(0.0002, _positive)
    beta1: float = _key(0.5, _fraction_below(1))
    beta2: float = _key(0.999, _fraction_below(1))
    label_noise: float = _key(0.2, _fraction_below(0.5))  # real ~ U[1-x, 1], fake ~ U[0, x]
    # "" (off) or a comma list of color,translation,cutout
    diffaugment: str = _key("", _diffaugment, bare_means_true=True)
    ema: float = _key(0.0, _ema, bare_means_true=True)  # EMA decay of G's weights; 0 = no EMA
    # StyleGAN2's EMA ramp-up: the EMA's half-life in images is at most ema_rampup x the images
    # seen so far (0.05 in StyleGAN2), so early weights are forgotten fast; 0 = off
    ema_rampup: float = _key(0.0, _non_negative)
    # --- the small-data GAN toolbox (README "Recipes"; defaults: the seed's algorithm) ----------
    # bce: the seed's cross-entropy on D's probabilities, with label noise; nonsaturating:
    # softplus on D's logits (StyleGAN2); hinge: Lim & Ye 2017, Miyato et al. 2018
    loss: str = _key("bce", _choice(GAN_LOSSES))
    # R1 penalty on real images as D sees them (Mescheder et al. 2018), weight gamma; 0 = off
    r1_gamma: float = _key(0.0, _non_negative)
    r1_every: int = _key(16, _int(1))  # lazy R1: every N steps, scaled by N (StyleGAN2)
    # D's normalisation: batch (the seed's BatchNorm), spectral (Miyato et al. 2018), none
    d_norm: str = _key("batch", _choice(D_NORMS))
    # fixed: DiffAugment on every image; ada: each op applied with probability p, tuned from
    # r_t = E[sign(D(real))] towards ada_target (Karras et al. 2020); ada with diffaugment off
    # tunes all three ops
    augment_p: str = _key("fixed", _choice(AUGMENT_P))
    ada_target: float = _key(0.6, _fraction_between)
    # images for p to move by 1 (StyleGAN2-ADA's ada_kimg x 1000; theirs is 500k, ours is
    # shorter because our runs are: 10k steps of 32 images is 320k)
    ada_speed: float = _key(100_000.0, _positive)
    # the learning rates over the run: constant, or decayed to 0 at `steps` (linear, cosine)
    lr_schedule: str = _key("constant", _choice(LR_SCHEDULES))
    precision: str = _key("auto", _choice(PRECISIONS))  # auto: bf16 where native, else float32
    # auto | tensorflow | jax (gan_core.backend says what auto picks). A checkpoint carries over
    # between backends, and `auto` may resolve differently on the machine that resumes.
    backend: str = _key("auto", _choice(BACKENDS), resumable=True)
    # one seed, or a list: the seeds of a packed run (one run directory per seed, trained as
    # one program on JAX; gan_core.packing)
    seed: int | tuple[int, ...] = _key(0, _seed)
    # train steps per compiled call; 0 = auto
    steps_per_execution: int = _key(0, _int(0, "auto"), resumable=True)
    # --- bookkeeping ----------------------------------------------------------------------------
    name: str = _key("", _str, resumable=True)  # run name; "" = the preset's file name, or "run"
    log_every: int = _key(100, _int(0, "off"), resumable=True)
    sample_every: int = _key(100, _int(0, "off"), resumable=True)
    checkpoint_every: int = _key(500, _int(0, "off"), resumable=True)
    # score KID/FID/precision/recall every N steps; 0 = off
    eval_every: int = _key(0, _int(0, "off"), resumable=True)
    # album (offline) | inception (Keras InceptionV3 weights)
    eval_extractor: str = _key("album", _choice(EXTRACTORS), resumable=True)
    # generated images per evaluation; 0 = as many as real, at most 1000
    eval_samples: int = _key(0, _int(0, "as many as real"), resumable=True)
    inception_weights: str = _key("", _str, resumable=True)  # weights for eval_extractor=inception
    # The score whose best evaluation keeps checkpoints/best.npz and best.json, and which way is
    # better ("" = the score's own: KID and FID lower, precision and recall higher). A sweep
    # passes its metric.name and metric.goal.
    best_metric: str = _key(PRIMARY_SCORE, _choice(SCORES), resumable=True)
    best_goal: str = _key("", _choice(("", "minimize", "maximize")), resumable=True)
    keep_checkpoints: int = _key(3, _int(1), resumable=True)
    grid_size: int = _key(8, _int(1))  # sample grids are grid_size x grid_size images
    runs_dir: str = _key("runs", _str, resumable=True)
    cache_dir: str = _key("", _str, resumable=True)  # "" = $ALBUMGAN_CACHE or ~/.cache/albumgan
    data_dir: str = _key("", _str, resumable=True)  # registry root; "" = $ALBUMGAN_DATA or ./data

    def __post_init__(self) -> None:
        # Notebook users write TrainConfig(ema=True, noise_shape=[1, 1, 100]): normalise every
        # field through the same parser the CLI uses.
        for f in fields(self):
            object.__setattr__(self, f.name, parse_value(f.name, getattr(self, f.name)))

    @property
    def best_direction(self) -> str:
        """``best_goal``, or ``best_metric``'s own goal when it is not set."""
        return self.best_goal or GOALS[self.best_metric]

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds this config trains: one, or the members of a packed run."""
        return self.seed if isinstance(self.seed, tuple) else (self.seed,)

    @property
    def noise_dim(self) -> int:
        return self.noise_shape[-1]

    @property
    def diffaugment_ops(self) -> tuple[str, ...]:
        """The ops every image goes through; with ``augment_p: ada`` and diffaugment off, all."""
        ops = tuple(op for op in self.diffaugment.split(",") if op)
        if not ops and self.augment_p == "ada":
            return DIFFAUGMENT_OPS
        return ops

    @property
    def ada(self) -> bool:
        return self.augment_p == "ada"

    @property
    def r1(self) -> bool:
        return self.r1_gamma > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), ready for YAML/JSON."""
        out = dataclasses.asdict(self)
        out["noise_shape"] = list(self.noise_shape)
        if isinstance(self.seed, tuple):
            out["seed"] = list(self.seed)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` parsed like flags (strings allowed) and validated."""
        return dataclasses.replace(self, **{k: parse_value(k, v) for k, v in changes.items()})


RULES: dict[str, KeyRule] = {f.name: f.metadata["rule"] for f in fields(TrainConfig)}
KEYS: tuple[str, ...] = tuple(RULES)
RESUMABLE = frozenset(k for k, rule in RULES.items() if rule.resumable)
BARE_MEANS_TRUE = frozenset(k for k, rule in RULES.items() if rule.bare_means_true)
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def _allowed_keys() -> str:
    return ", ".join(KEYS)


def parse_value(key: str, raw: Any) -> Any:
    """Normalise one raw value (from YAML, JSON or argv) for ``key``.

    Raises:
        ConfigError: unknown key or a value of the wrong kind, naming the key and what is allowed.
    """
    if key not in RULES:
        raise ConfigError(f"unknown config key {key!r}; allowed keys: {_allowed_keys()}")
    return RULES[key].parse(key, raw)


# ------------------------------------------------------------------------------------------------
# Layers: defaults -> YAML -> JSON -> flags.
# ------------------------------------------------------------------------------------------------


def _unwrap(value: Any) -> Any:
    """W&B sometimes nests values as {"value": v}; take the value."""
    if isinstance(value, dict) and set(value) == {"value"}:
        return value["value"]
    return value


def overrides_from_mapping(mapping: Any, source: str) -> dict[str, Any]:
    """Parse every entry of a YAML/JSON mapping; unknown keys fail naming ``source``.

    A mapping under a name that is not a key is a W&B parameter group (``parameters:`` nested
    in a sweep file, passed as one dict): its entries are config keys.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError(
            f"{source}: expected a mapping of config keys, got {type(mapping).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        key = str(key).replace("-", "_")
        value = _unwrap(value)
        if key not in RULES and isinstance(value, dict):
            out.update(overrides_from_mapping(value, f"{source}, group {key}"))
            continue
        if key not in RULES:
            raise ConfigError(
                f"unknown config key {key!r} in {source}; allowed keys: {_allowed_keys()}"
            )
        out[key] = parse_value(key, value)
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
        data = safe_yaml(path.read_text(encoding="utf-8"))
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
