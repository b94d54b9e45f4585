"""Keep framework notices that are not problems off a training run's stderr; keep the rest.

TensorFlow writes on every start lines that a person reads as errors::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly different ...
    E0000 ... util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512. Falling ...
    E0000 ... meta_optimizer.cc:967] remapper failed: ...

Where an environment variable silences a notice, it is set here before TensorFlow loads:
``TF_CPP_MIN_LOG_LEVEL=1`` (unless the user set it) drops TensorFlow's INFO lines and keeps its
warnings and errors. The lines above are not reached by it: the first two are written before
TensorFlow reads the variable, the last two at ERROR level although nothing is wrong (a skipped
graph rewrite; an int64 op left to Eigen). Short of turning oneDNN off
(``TF_ENABLE_ONEDNN_OPTS=0``, the CPU path's bf16 speed) no variable stops them, so ``install``
passes the process's stderr through a small filter process that drops exactly those lines and
copies every other byte as it comes. The filter outlives a crash of the trainer long enough to
pass on its last words.

``ALBUMGAN_FRAMEWORK_LOGS=all`` shows everything. Only the entry points call ``install``
(``albumgan train|sample|evaluate``, ``python experiments/train.py``), never the library.
Run as a script, this file is the filter (standard library only, started with ``-I -S``).
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys

HARMLESS = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(rb"^I\d{4} [^\]]*\] oneDNN custom operations are on\."),
    re.compile(rb"^E\d{4} [^\]]*\] oneDNN supports DT_\w+ only on platforms with"),
    re.compile(rb"^E\d{4} [^\]]*meta_optimizer\.cc:\d+\] remapper failed:"),
)
# A chunk that may become one of the lines above is held until its line ends; anything else is
# passed on at once, so a progress bar that redraws with "\r" is not held back.
_MAY_BE_NOTICE = re.compile(rb"^(W(A(R(N(I(N(G(:.*)?)?)?)?)?)?)?|[IE]\d{0,4}( .*)?)$", re.DOTALL)

_filter: subprocess.Popen | None = None  # kept referenced for the life of the process


def is_harmless(line: bytes) -> bool:
    return any(pattern.match(line) for pattern in HARMLESS)


def install() -> None:
    """Set the environment that silences notices at their source, then route stderr (fd 2)
    through the filter. Does nothing when ``ALBUMGAN_FRAMEWORK_LOGS=all`` or already done."""
    global _filter
    if os.environ.get("ALBUMGAN_FRAMEWORK_LOGS") == "all":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if _filter is not None:
        return
    try:
        _filter = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=sys.stderr.fileno(),  # the real stderr
            start_new_session=True,  # no Ctrl-C for it: it ends when the last writer is gone
        )
    except (OSError, ValueError):  # no way to start it: leave stderr as it is
        return
    sys.stderr.flush()
    real_stderr = os.dup(2)
    os.dup2(_filter.stdin.fileno(), 2)  # fd 2 now writes to the filter, children's too
    _filter.stdin.close()  # fd 2 holds the pipe open; the filter sees EOF when we are gone
    atexit.register(_drain, real_stderr)


def _drain(real_stderr: int) -> None:
    """At exit: give fd 2 back and let the filter pass on our last lines before we return, so
    that an error is printed before the shell's next prompt. A child that still holds the pipe
    (W&B's service) keeps the filter going after we have gone; we wait a few seconds at most."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(real_stderr, 2)
    try:
        _filter.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _filter_stream(source: int = 0, sink: int = 1) -> None:
    """Copy ``source`` to ``sink`` line by line, dropping harmless notices, until EOF."""
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not is_harmless(line))
        if pending and not _MAY_BE_NOTICE.match(pending):
            out, pending = out + pending, b""
        if out:
            _write_all(sink, out)
    if pending and not is_harmless(pending):
        _write_all(sink, pending)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    try:
        _filter_stream()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
