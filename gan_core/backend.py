"""Which framework Keras runs on: ``backend: auto | tensorflow | jax``, chosen once per process.

    from albumgan.gan_core import backend
    name = backend.activate("auto")   # sets KERAS_BACKEND, then imports Keras

``auto`` picks, in order:

1. the backend Keras already runs on, when Keras is imported (a notebook that imported it first);
2. ``$KERAS_BACKEND``, when it names one of ours (Keras's own switch, honoured as Keras does);
3. JAX, when it is installed with a GPU plugin and sees a GPU (the fast path: one jitted step);
4. TensorFlow, when installed (the tuned CPU path: fused kernels, oneDNN bf16);
5. JAX on the CPU;
6. otherwise a ``BackendError`` naming the extras to install.

Nothing here imports a framework until it must: config parsing, ``--help``, ``sweep validate``
and the reports never do. Looking for a GPU imports JAX only when a JAX GPU plugin is installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Callable

from albumgan.gan_core.contract import AlbumganError

BACKENDS = ("auto", "tensorflow", "jax")
INSTALL_HINT = (
    "install a backend: pip install 'albumgan[cpu]' (TensorFlow, the CPU path), "
    "'albumgan[jax]' (JAX on the CPU) or 'albumgan[gpu]' (JAX with CUDA 13)"
)
# Distributions that give JAX an accelerator: jax-cuda12-plugin, jax-cuda13-pjrt, jax-rocm...
GPU_PLATFORMS = ("gpu", "cuda", "rocm")  # what jax.Device.platform says for a GPU
_JAX_GPU_PLUGIN = re.compile(r"^jax[-_](cuda|rocm)\d*[-_](plugin|pjrt)$", re.IGNORECASE)


class BackendError(AlbumganError):
    """The requested backend cannot run here (not installed, or Keras already runs another)."""


def installed(name: str) -> bool:
    """Whether ``tensorflow`` or ``jax`` can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def jax_gpu_plugin_installed() -> bool:
    for dist in importlib.metadata.distributions():
        if _JAX_GPU_PLUGIN.match(dist.metadata.get("Name") or ""):
            return True
    return False


def _jax_settings() -> None:
    """Before JAX starts (it reads these variables once, at import); a user's own value wins.

    - GPU memory is allocated as needed rather than 75% up front, so that several trainers
      (sweep workers) can share one GPU.
    - Compiled programs are kept on disk (JAX's persistent compilation cache, in the albumgan
      cache folder), so the next run of the same shapes (every trial of a sweep, a resumed run)
      loads them instead of compiling again: on 2 CPU cores a 200-step 16 px run took 21 s the
      first time and 11 s the next.
    """
    from albumgan.gan_core.fileio import default_cache_dir

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(default_cache_dir() / "jax-compiled"))
    # JAX's default keeps only programs that took over 1 s to compile; most of ours take less.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    if "jax" in sys.modules:  # imported already (a notebook): its config no longer reads them
        import jax

        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
            minimum = float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
            jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)


def jax_sees_gpu() -> bool:
    """JAX is installed with a GPU plugin and finds a GPU (imports JAX only in that case)."""
    if not installed("jax") or not jax_gpu_plugin_installed():
        return False
    _jax_settings()  # asking for devices starts JAX's client, which allocates
    try:
        import jax

        return any(device.platform in GPU_PLATFORMS for device in jax.devices())
    except RuntimeError:  # plugin present but no driver/device: JAX falls back or raises
        return False


def loaded() -> str | None:
    """The backend Keras runs on in this process, or None when Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    import keras

    return keras.backend.backend()


def resolve(requested: str = "auto") -> str:
    """The backend ``requested`` means on this machine, in this process (see the module doc).

    Raises:
        BackendError: nothing usable is installed, the requested one is not installed, or Keras
            already runs on another backend.
    """
    if requested not in BACKENDS:
        raise BackendError(f"backend: expected one of {', '.join(BACKENDS)}, got {requested!r}")
    current = loaded()
    if current is not None:
        if requested not in ("auto", current):
            raise BackendError(
                f"backend: Keras is already running on {current} in this process; "
                f"backend={requested} needs a new process (or set KERAS_BACKEND={requested} "
                "before importing keras)"
            )
        if current not in BACKENDS:
            raise BackendError(
                f"backend: Keras runs on {current}; albumgan supports jax, tensorflow"
            )
        return current
    return choose(requested)


def choose(requested: str = "auto", sees_gpu: Callable[[], bool] | None = None) -> str:
    """What ``requested`` means for a process that has not loaded Keras yet, on this machine:
    ``resolve``'s rule. ``sees_gpu`` answers whether JAX would find a GPU here (default: ask
    JAX, which starts its client; a sweep asks ``nvidia-smi`` instead, ``sweeps.devices``).

    Raises:
        BackendError: the requested backend, or any, is not installed.
    """
    if requested != "auto":
        if not installed(requested):
            raise BackendError(
                f"backend={requested} but {requested} is not installed; {INSTALL_HINT}"
            )
        return requested
    from_env = os.environ.get("KERAS_BACKEND", "")
    if from_env in BACKENDS[1:] and installed(from_env):
        return from_env
    if (sees_gpu or jax_sees_gpu)():
        return "jax"
    if installed("tensorflow"):
        return "tensorflow"
    if installed("jax"):
        return "jax"
    raise BackendError(f"no Keras backend is installed; {INSTALL_HINT}")


def activate(requested: str = "auto") -> str:
    """Resolve ``requested``, point Keras at it (before Keras is imported) and import Keras.

    On JAX, GPU memory is allocated as needed and compiled programs are cached on disk
    (``_jax_settings``).

    Returns:
        The backend name Keras now runs on.
    """
    name = resolve(requested)
    if loaded() is None:
        os.environ["KERAS_BACKEND"] = name
        if name == "jax":
            _jax_settings()
        import keras  # noqa: F401 - the import is the point: Keras reads KERAS_BACKEND now
    return name
