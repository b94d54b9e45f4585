"""Pick the dtype policy: ``precision: auto`` -> what this machine runs fastest and safely.

auto: mixed_float16 on a GPU, mixed_bfloat16 on a CPU with native bf16 dot products (AMX-BF16 or
AVX512-BF16: oneDNN runs bf16 convolutions about twice as fast there), float32 otherwise.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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


def resolve_precision(requested: str) -> str:
    """The Keras dtype policy name for a config's ``precision`` value."""
    if requested != "auto":
        return requested
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"
