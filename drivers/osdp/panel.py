"""libosdp's ``ControlPanel`` on one bus, run by a thread of ours.

The library's state machine needs ``refresh()`` every few milliseconds; a dedicated thread
calls it (holding the panel lock, as the library's own methods do) and the library calls back
from inside it: events from the readers and the completion of commands. Callbacks are handed
to the driver as they come and must return at once and never call back into the panel (the
lock is held). Every reader is set up with its own SCBK, ``ENFORCE_SECURE`` (no plain-text
session, no silent fallback to the default key) and notifications (online/offline and
secure-channel changes arrive as events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import osdp

from drivers.osdp.channel import SerialChannel
from drivers.osdp.keys import Scbk

log = logging.getLogger(__name__)

EventHandler = Callable[[int, dict[str, Any]], None]
"""Called with (reader address, event dict) from the refresh thread."""
CompletionHandler = Callable[[int, dict[str, Any], int], None]
"""Called with (reader address, command dict, completion status) from the refresh thread."""

LOG_LEVELS = {
    "error": osdp.LogLevel.Error,
    "warning": osdp.LogLevel.Warning,
    "info": osdp.LogLevel.Info,
    "debug": osdp.LogLevel.Debug,
}
COMPLETION_OK = osdp.CompletionStatus.Ok
COMPLETION_FAILED = osdp.CompletionStatus.Failed


@dataclass(frozen=True, slots=True)
class PanelReader:
    address: int
    scbk: Scbk


class _LibPanel(osdp.ControlPanel):  # type: ignore[misc]
    """The library's panel with events going straight to our handler: the library would
    also queue every event for ``get_event()``, which nothing here reads, so that queue
    would grow without bound."""

    def __init__(self, infos: list[Any], *, log_level: int, handler: EventHandler) -> None:
        super().__init__(infos, log_level=log_level)
        self._handler = handler

    def _internal_event_handler(self, pd: int, event: dict[str, Any]) -> int:
        try:
            self._handler(self.pd_addr[pd], event)
        except Exception:
            log.exception("OSDP event handler failed on %r", event)
        return 0


class Panel:
    """One control panel (one serial bus) and its refresh thread."""

    def __init__(
        self,
        channel: SerialChannel,
        readers: Sequence[PanelReader],
        *,
        on_event: EventHandler,
        on_completion: CompletionHandler,
        refresh_s: float = 0.005,
        log_level: str = "warning",
        name: str = "osdp",
    ) -> None:
        self.channel = channel
        self.addresses = [r.address for r in readers]
        flags = [osdp.LibFlag.EnforceSecure, osdp.LibFlag.EnableNotification]
        infos = [
            osdp.PDInfo(
                r.address, channel, scbk=r.scbk.reveal(), name=f"PD-{r.address}", flags=flags
            )
            for r in readers
        ]
        self._cp: Any = _LibPanel(infos, log_level=LOG_LEVELS[log_level], handler=on_event)
        self._on_completion = on_completion
        self._cp.set_command_completion_handler(self._completion)
        self._refresh_s = refresh_s
        self._name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cp.lock = self._lock  # the library's own methods take this lock
        self.version = str(self._cp.ctx.get_version())

    def _completion(self, address: int, command: dict[str, Any], status: int) -> None:
        try:
            self._on_completion(address, command, status)
        except Exception:
            log.exception("OSDP completion handler failed on %r", command)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"osdp-panel-{self._name}")
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                try:
                    self._cp.ctx.refresh()
                    failures = 0
                except Exception:
                    failures += 1
                    if failures in (1, 100) or failures % 10000 == 0:
                        log.exception("OSDP refresh failed (%d times in a row)", failures)
            self._stop.wait(self._refresh_s)

    def stop(self) -> None:
        """Stop the refresh thread and tear the library's context down. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._cp.ctx is not None:
                # Dropping the context tears it down (and breaks the reference cycle
                # context -> callback -> panel -> context).
                self._cp.ctx = None

    # ------------------------------------------------------------------ readers

    def _index(self, address: int) -> int:
        return self.addresses.index(address)

    def submit(self, address: int, command: dict[str, Any]) -> bool:
        """Queue a command for a reader; False when the library refuses it (reader offline,
        queue full)."""
        with self._lock:
            if self._cp.ctx is None:
                return False
            return bool(self._cp.ctx.submit_command(self._index(address), command))

    def is_online(self, address: int) -> bool:
        with self._lock:
            return self._cp.ctx is not None and bool(
                self._cp.ctx.status() >> self._index(address) & 1
            )

    def is_sc_active(self, address: int) -> bool:
        with self._lock:
            return self._cp.ctx is not None and bool(
                self._cp.ctx.sc_status() >> self._index(address) & 1
            )

    def capability(self, address: int, function_code: int) -> tuple[int, int]:
        """(compliance level, number of items) the reader reported for a capability."""
        with self._lock:
            level, items = self._cp.ctx.check_capability(self._index(address), function_code)
        return int(level), int(items)

    def ensure_enabled(self, address: int) -> bool:
        """Enable a reader left disabled (a restart that timed out); True if it was."""
        index = self._index(address)
        with self._lock:
            if self._cp.ctx is None or self._cp.ctx.is_pd_enabled(index):
                return False
            return bool(self._cp.ctx.enable_pd(index))

    def set_enforce_secure(self, address: int, enforce: bool) -> None:
        flag = osdp.LibFlag.EnforceSecure
        with self._lock:
            if enforce:
                self._cp.ctx.set_flag(self._index(address), flag)
            else:
                self._cp.ctx.clear_flag(self._index(address), flag)

    def restart(self, address: int, *, timeout_s: float = 12.0) -> bool:
        """Take a reader through disable and enable, so the library starts its session over
        now instead of after its own five-minute back-off. The library disables a reader
        only between commands, which for one that does not answer can take its whole retry
        cycle (about 9 s); blocks up to ``timeout_s``."""
        index = self._index(address)
        with self._lock:
            if self._cp.ctx is None:
                return False
            self._cp.ctx.disable_pd(index)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._cp.ctx is None:
                    return False
                if not self._cp.ctx.is_pd_enabled(index):
                    return bool(self._cp.ctx.enable_pd(index))
            time.sleep(self._refresh_s)
        return False


__all__ = ["COMPLETION_FAILED", "COMPLETION_OK", "LOG_LEVELS", "Panel", "PanelReader"]
