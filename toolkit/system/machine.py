"""One full-system QEMU process, owned by a context manager and driven over QMP.

Like QEMU's own ``python/qemu/machine/machine.py``: the machine starts paused (``-S``) with its
QMP monitor connecting to a socket we listen on; ``run`` issues ``cont``, waits for the
``SHUTDOWN`` event (the guest powered off, or rebooted: ``-no-reboot`` turns a reboot, which is
what a kernel panic does with ``panic=-1``, into a shutdown), then ``quit``s. Leaving the context
always kills what is left of QEMU and removes the working folder. While the guest runs, ``run``
calls its ``watch`` callback every POLL_S seconds (the caller passes the guest's output on).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from qemu.qmp import QMPClient

from ..cmd import echo
from ..errors import RunError

START_TIMEOUT_S = 30.0
POLL_S = 0.2


@dataclass(frozen=True)
class Shutdown:
    """How the run ended: the SHUTDOWN event's reason, or None when it timed out."""

    reason: str | None
    wall_s: float  # from `cont` to the SHUTDOWN event (or the timeout)


class Machine:
    """``with Machine(argv, name) as m: outcome = m.run(timeout)``; files live in ``m.workdir``."""

    def __init__(self, argv: list[str], name: str, parent: Path | None = None) -> None:
        self.argv = list(argv)
        self.name = name
        self._parent = parent
        self.workdir = Path(".")
        self._socket_dir = Path(".")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Machine":
        if self._parent is not None:
            self._parent.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}.", dir=self._parent))
        # the QMP socket in a short path of its own: a Unix socket path is limited to 107 bytes
        self._socket_dir = Path(tempfile.mkdtemp(prefix="ppcllm-qmp."))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    @property
    def qemu_log(self) -> Path:
        return self.workdir / "qemu.log"

    def run(self, timeout: float, watch: Callable[[], None] | None = None) -> Shutdown:
        """Start QEMU, let the guest run until it shuts down or ``timeout`` seconds pass, quit;
        ``watch`` is called every POLL_S seconds meanwhile (an exception from it ends the run)."""
        return asyncio.run(self._session(timeout, watch or (lambda: None)))

    async def _session(self, timeout: float, watch: Callable[[], None]) -> Shutdown:
        socket_path = self._socket_dir / "qmp.sock"
        qmp = QMPClient(self.name)
        await qmp.start_server(str(socket_path))
        argv = [*self.argv, "-S", "-qmp", f"unix:{socket_path}"]
        echo(argv)
        with self.qemu_log.open("wb") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=self.workdir)
        try:
            await self._accept(qmp)
            with qmp.listener("SHUTDOWN") as listener:
                start = time.monotonic()
                await qmp.execute("cont")
                reason = await self._wait_shutdown(listener, start + timeout, watch)
                wall = time.monotonic() - start
            await self._quit(qmp)
            return Shutdown(reason, wall)
        except BaseException:
            self._kill()  # at once: nothing more is wanted from this machine
            raise
        finally:
            try:
                await qmp.disconnect()
            except Exception:  # disconnect re-raises what ended the session (QEMU's EOF after quit)
                pass
            self._wait_exit(5.0)

    async def _quit(self, qmp: QMPClient) -> None:
        """Ask QEMU to quit; it may close the socket before its reply arrives, which is fine."""
        if not self._alive():
            return
        try:
            await qmp.execute("quit")
        except Exception:  # EOFError / ExecInterruptedError: the connection went first
            pass

    async def _accept(self, qmp: QMPClient) -> None:
        accept = asyncio.ensure_future(qmp.accept())
        deadline = time.monotonic() + START_TIMEOUT_S
        while not accept.done():
            if not self._alive() or time.monotonic() > deadline:
                accept.cancel()
                raise RunError(f"{self.argv[0]} did not start: {self._last_log_line()}")
            await asyncio.wait({accept}, timeout=POLL_S)
        try:
            accept.result()
        except Exception:  # ConnectError: QEMU connected and then exited (a bad option, a missing ROM)
            self._wait_exit(2.0)
            raise RunError(f"{self.argv[0]} did not start: {self._last_log_line()}") from None

    async def _wait_shutdown(self, listener: object, deadline: float, watch: Callable[[], None]) -> str | None:
        from qemu.qmp.events import EventListener

        assert isinstance(listener, EventListener)
        while time.monotonic() < deadline:
            watch()
            if not self._alive():
                raise RunError(f"{self.argv[0]} exited while the guest ran: {self._last_log_line()}")
            try:
                event = await asyncio.wait_for(listener.get(), timeout=POLL_S)
            except asyncio.TimeoutError:
                continue
            data = event.get("data", {})
            return str(data.get("reason", "unknown")) if isinstance(data, dict) else "unknown"
        return None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _wait_exit(self, seconds: float) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(seconds)
            except subprocess.TimeoutExpired:
                self._kill()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def _last_log_line(self) -> str:
        try:
            lines = [line for line in self.qemu_log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        if self._proc is not None and self._proc.poll() is not None:
            status = f"exit status {self._proc.returncode}"
            return f"{lines[-1].strip()} ({status})" if lines else status
        return lines[-1].strip() if lines else "no message"
