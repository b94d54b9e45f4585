"""Pick the dtype policy: ``precision: auto`` -> what this machine runs fastest and safely.

auto, by backend and device:

- a GPU with native bf16 (NVIDIA compute capability 8.0 and up: A100, H100, H200...):
  ``mixed_bfloat16`` (float32's range, so no loss scaling); an older GPU: ``float32`` on JAX,
  ``mixed_float16`` (with loss scaling) on TensorFlow;
- TensorFlow on a CPU with native bf16 dot products (AMX-BF16 or AVX512-BF16: oneDNN runs bf16
  convolutions about twice as fast there): ``mixed_bfloat16``;
- otherwise ``float32`` (JAX on a CPU included: XLA's CPU convolutions are not faster in bf16).

Call it after ``gan_core.backend.activate``: it asks the running backend about its devices.
"""

from __future__ import annotations

from pathlib import Path

from albumgan.gan_core.backend import GPU_PLATFORMS
from albumgan.gan_core.config import ConfigError

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)


class PrecisionError(ConfigError):
    """A precision the backend cannot run (a user error: exit code 2)."""


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no flags known, so no bf16 assumption
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def _capability(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (0,)


def gpu_capability(backend: str) -> tuple[int, ...] | None:
    """The first GPU's compute capability, e.g. (9, 0); None when the backend sees no GPU."""
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform in GPU_PLATFORMS]
        if not gpus:
            return None
        return _capability(getattr(gpus[0], "compute_capability", "0"))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return tuple(details.get("compute_capability", (0,)))


def check_precision(requested: str, backend: str) -> None:
    """Refuse a precision ``backend`` cannot train in; needs no framework loaded.

    Raises:
        PrecisionError: ``mixed_float16`` on JAX (its engine does no loss scaling).
    """
    if requested == "mixed_float16" and backend == "jax":
        raise PrecisionError(
            "precision: mixed_float16 needs loss scaling, which the JAX engine does not do; "
            "use mixed_bfloat16 (no loss scaling needed) or float32"
        )


def resolve_precision(requested: str, backend: str) -> str:
    """The Keras dtype policy name for a config's ``precision`` value on ``backend``.

    Raises:
        PrecisionError: see ``check_precision``.
    """
    check_precision(requested, backend)
    if requested != "auto":
        return requested
    capability = gpu_capability(backend)
    if capability is not None:
        if capability >= BF16_MIN_COMPUTE_CAPABILITY:
            return "mixed_bfloat16"
        return "float32" if backend == "jax" else "mixed_float16"
    if backend == "tensorflow" and cpu_has_bf16():
        return "mixed_bfloat16"
    return "float32"
