"""A Flower deployment on this machine: one SuperLink, one SuperNode per client, ``flwr run``.

:class:`LocalDeployment` starts the processes (insecure: localhost only), submits runs of the Flower App in
``flower-app/`` and stops everything when it leaves its ``with`` block, so a test or the ``flower deploy`` command
leaves nothing behind. Across machines, start the same processes by hand with TLS and node authentication (README,
"Flower").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parents[2] / "flower-app"
CONNECTION = "fedcofit-local"


class DeploymentError(RuntimeError):
    """A Flower process did not start, or a run did not finish."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    """A Flower executable of this environment (next to this Python), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise DeploymentError(
            f"{name} not found: install Flower in this environment (pip install 'flwr[simulation]==1.42.0')."
        )
    return found


@dataclass
class LocalDeployment:
    """A SuperLink and ``n_nodes`` SuperNodes (partition ids 0..n-1) on localhost; ``client_threads`` sets torch's
    threads in every ClientApp, ``home`` is Flower's home folder (``FLWR_HOME``), temporary by default."""

    n_nodes: int
    client_threads: int | None = None
    home: Path | None = None
    port: int = 0
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __enter__(self) -> LocalDeployment:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "FLWR_HOME": str(self.home), "FLWR_TELEMETRY_ENABLED": "0", "PATH": path}
        env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
        if self.client_threads:
            env["FEDCOFIT_CLIENT_THREADS"] = str(self.client_threads)
        return env

    def _flwr(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        """A ``flwr`` command against this deployment (its home and connection), output as text."""
        return subprocess.run([_bin("flwr"), *args], env=self.env, capture_output=True, text=True, **kw)

    def start(self, timeout: float = 60.0) -> None:
        self.home = Path(self.home or tempfile.mkdtemp(prefix="fedcofit-flwr-"))
        self.log_dir = Path(self.log_dir or self.home / "logs")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        flags = f"--insecure --host 127.0.0.1 --port {self.port} --disable-runtime-dependency-installation"
        self._spawn("superlink", [_bin("flower-superlink"), *flags.split()])
        self._wait_port(self.port, timeout, "superlink")
        self._write_connection()
        for i in range(self.n_nodes):
            self.start_node(i)

    def start_node(self, i: int) -> None:
        """Start the SuperNode of client ``i`` (again, e.g. after :meth:`kill_node`: it rejoins under a new node id)."""
        flags = f"--insecure --superlink 127.0.0.1:{self.port} --host 127.0.0.1 --port {free_port()}".split()
        config = ["--node-config", f"partition-id={i} num-partitions={self.n_nodes}"]
        self._spawn(f"supernode{i}", [_bin("flower-supernode"), *flags, *config])

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_port(self, port: int, timeout: float, name: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.procs[name].poll() is not None:
                raise DeploymentError(f"the {name} exited at start: see {self.log_dir / (name + '.log')}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise DeploymentError(f"the {name} did not listen on port {port} within {timeout:.0f} s: see {self.log_dir}")

    def _write_connection(self) -> None:
        self._flwr("config", "list")  # creates config.toml
        path = self.home / "config.toml"
        text = path.read_text() if path.exists() else '[superlink]\ndefault = "local"\n'
        text += f'\n[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self.port}"\ninsecure = true\n'
        path.write_text(text)

    def kill_node(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Kill the SuperNode of client ``i`` and what it started (its ClientApp), as a crash would."""
        proc = self.procs[f"supernode{i}"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def run(
        self,
        preset: str = "ci",
        overrides: list[str] | None = None,
        method: str | None = None,
        run_dir: str | Path | None = None,
        timeout: float = 1800.0,
        wait_s: float = 300.0,
    ) -> dict[str, Any]:
        """Submit a run of the Flower App and wait for it; returns Flower's record of the run (raises if it failed)."""
        folder = str(Path(run_dir).resolve()) if run_dir else ""
        values = {"preset": preset, "overrides": ";".join(overrides or []), "method": method or "", "run-dir": folder}
        # TOML values: a JSON string is a TOML basic string (quotes and backslashes escaped), a JSON float a TOML float
        run_config = " ".join(
            f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in {**values, "wait-s": float(wait_s)}.items()
        )
        done = self._flwr(
            "run", str(APP_DIR), CONNECTION, "--format", "json", "--run-config", run_config, cwd=self.home
        )
        try:
            run_id = json.loads(done.stdout[done.stdout.index("{") :])["run-id"]
        except (ValueError, KeyError):
            why = f"exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}"
            raise DeploymentError(f"flwr run did not start a run ({why}") from None
        status = self.wait(run_id, timeout, Path(run_dir) / "flower.json" if run_dir else None)
        if status.get("status") != "finished:completed":
            logs = self._flwr("log", str(run_id), CONNECTION, "--show").stdout[-4000:]
            raise DeploymentError(
                f"run {run_id} ended {status.get('status')}: {status.get('status-details', '')}\n{logs}"
            )
        return status

    def wait(self, run_id: str | int, timeout: float, done_file: Path | None = None) -> dict[str, Any]:
        """Poll ``flwr list`` (a Python process of its own: every few seconds, and at once when ``done_file``, the run
        folder's ``flower.json`` written last, appears) until run ``run_id`` has finished; returns its record."""
        end = time.monotonic() + timeout
        interval, next_ask = 1.0, time.monotonic()
        while time.monotonic() < end:
            finished = done_file is not None and done_file.exists()
            if finished or time.monotonic() >= next_ask:
                out = self._flwr("list", CONNECTION, "--run-id", str(run_id), "--format", "json")
                try:
                    runs = json.loads(out.stdout[out.stdout.index("{") :]).get("runs", [])
                except ValueError:
                    runs = []
                if runs and str(runs[0].get("status", "")).startswith("finished"):
                    return runs[0]
                interval = 1.0 if finished else min(interval * 1.5, 8.0)
                next_ask = time.monotonic() + interval
            time.sleep(0.25)
        raise DeploymentError(f"run {run_id} did not finish within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop every process this deployment started (and their children); the home folder and its logs stay."""
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()
