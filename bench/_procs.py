"""The benchmark's child processes: started in their own session, logged to files, always stopped.

Every process is the leader of a new session, so stopping it (SIGTERM, then SIGKILL after a
grace period) reaches the workers it forked too (granian's, node:cluster's). Nothing here ever
signals a process it did not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class StartFailed(Exception):
    """A server the benchmark needs did not come up; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line[:300] for line in text[-lines:])

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise StartFailed(
                f"{self.name} exited with status {code}; the end of {self.log}:\n{self.tail()}"
            )


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Child:
        if name in self.children:
            raise ValueError(f"{name} is already running")
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            try:
                process = subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, cwd=cwd, start_new_session=True,
                )
            except OSError as exc:
                raise StartFailed(f"{name}: cannot run {argv[0]}: {exc}") from exc
        child = Child(name, process, log)
        self.children[name] = child
        return child

    async def stop(self, name: str, grace: float = 15.0) -> None:
        child = self.children.pop(name, None)
        if child is None or child.process.poll() is not None:
            return
        _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while child.process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        _signal_group(child.pid, signal.SIGKILL)  # the leader, and any worker it left behind
        if child.process.poll() is None:
            child.process.wait(timeout=5)

    async def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            await self.stop(name)

    async def wait_ready(
        self, child: Child, ready_dir: Path | None, workers: int, probe: str,
        timeout: float = 90.0, method: str = "GET", json: object = None,  # noqa: ASYNC109
        headers: dict[str, str] | None = None,
    ) -> None:
        """Until `workers` ready files exist (when given a dir) and `probe` answers 200."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() < deadline:
                child.check_alive()
                ready = ready_dir is None or len(list(ready_dir.glob("ready-*"))) >= workers  # noqa: ASYNC240
                if ready:
                    try:
                        response = await client.request(method, probe, json=json, headers=headers)
                        if response.status_code == 200:
                            return
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.1)
        raise StartFailed(
            f"{child.name} did not become ready at {probe} within {timeout:.0f} s;"
            f" the end of {child.log}:\n{child.tail()}"
        )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the session we created for it: its process group id is its pid
