"""Several trials of one shape trained by ONE packed trainer process (``sweep run --pack K``).

A worker runs K trials at once (``study.optimize(n_jobs=K)``: Optuna's threads, each with its
own trial, its own reports and its own pruning decision). Each thread hands its trial's run to
the ``Packer`` instead of starting a trainer; the packer gathers the runs that arrive together
with the same shape (every config key but the per-member ones, ``gan_core.packing``) and starts
one trainer for them with ``--pack-file``. Each trial then watches its own run directory as if
its trainer were its own: its metric, its end (``status.json``), and when pruned it asks the
trainer to stop that member alone (``STOP_REQUEST`` in the member's run directory): the member is
frozen and closed as interrupted, the others go on.

Runs whose shapes differ (a swept batch size, say) go to separate trainers. A run that finds no
partner within ``GATHER_SECONDS`` starts alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albumgan.gan_core.config import ConfigError, parse_value
from albumgan.gan_core.fileio import write_text
from albumgan.gan_core.packing import MEMBER_KEYS, RUN_KEYS

GATHER_SECONDS = 3.0


def shape_key(args: dict[str, Any]) -> str:
    """What a trial's runs must share to pack: its config values but the per-member keys."""
    shape = {k: v for k, v in args.items() if k not in MEMBER_KEYS + RUN_KEYS}
    # EMA and R1 on or off are the shape, their decay and gamma are not (gan_core.packing)
    for key, on in (("ema", "ema_on"), ("r1_gamma", "r1_on")):
        try:  # read as the trainer reads it
            shape[on] = parse_value(key, args.get(key, 0.0)) > 0
        except ConfigError:
            shape[on] = str(args[key])  # the trainer will refuse it; never packed with others
    return json.dumps(shape, sort_keys=True, default=str)


def program_args(argv: list[str], program: Path) -> list[str] | None:
    """The arguments after the program in a trial's argv (the trainer reads them as its own);
    None when the command does not run the program as a script."""
    for i, item in enumerate(argv):
        if item == str(program):
            return argv[i + 1 :]
    return None


@dataclass
class _Group:
    members: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    started: threading.Event = field(default_factory=threading.Event)


class Packer:
    """Gathers the runs of concurrent trials into packed trainer processes (thread-safe)."""

    def __init__(self, size: int, program: Path, folder: Path) -> None:
        self.size = size
        self.program = program
        self.folder = folder  # pack files and logs: <runs>/<study>/packs/
        self._lock = threading.Lock()
        self._open: dict[str, _Group] = {}
        self._count = 0

    def start(self, key: str, run_dir: Path, args: list[str], env: dict[str, str]):
        """Hand over one run; returns the trainer process that trains it (with others)."""
        with self._lock:
            group = self._open.setdefault(key, _Group())
            group.members.append({"run_dir": str(run_dir), "argv": args})
            if len(group.members) >= self.size:
                self._launch(key, group, env)
        deadline = time.monotonic() + GATHER_SECONDS
        while not group.started.wait(timeout=0.05):
            if time.monotonic() >= deadline:
                with self._lock:
                    if not group.started.is_set():
                        self._launch(key, group, env)
        if group.proc is None:
            raise OSError(f"the packed trainer {self.program} could not be started")
        return group.proc

    def _launch(self, key: str, group: _Group, env: dict[str, str]) -> None:
        """Start the group's trainer (the lock is held); its members learn of a failure too."""
        self._open.pop(key, None)
        try:
            self._start_trainer(group, env)
        finally:
            group.started.set()

    def _start_trainer(self, group: _Group, env: dict[str, str]) -> None:
        self._count += 1
        name = f"pack-{self._count:04d}-{time.strftime('%H%M%S')}"
        self.folder.mkdir(parents=True, exist_ok=True)
        pack_file = self.folder / f"{name}.json"
        write_text(pack_file, json.dumps({"members": group.members}, indent=1))
        log_path = self.folder / f"{name}.log"
        with log_path.open("ab") as log:
            group.proc = subprocess.Popen(
                [sys.executable, str(self.program), "--pack-file", str(pack_file)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for member in group.members:  # each trial's own log says where its trainer's is
            note = f"trained in a pack of {len(group.members)}: see {log_path}\n"
            with (Path(member["run_dir"]) / "trial.log").open("a") as own:
                own.write(note)
