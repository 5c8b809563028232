"""Fault injection for the simulated station: damaged and lost bytes on the line, a slow
device, a key pulled in the middle of a write, a link that drops in the middle of a write.

A :class:`FaultPlan` is shared by the station's line and protocol layers; set faults with
:meth:`FaultPlan.set` (the control command ``fault(kind, ...)`` calls it) or by assigning
its attributes from Python.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    CORRUPT = "corrupt"
    """Flip one byte in ``count`` bursts (``direction`` tx: frames the station sends; rx:
    reads of the line, each holding one or more of the host's frames; both), one in every
    ``every`` bursts. ``count`` -1 = until cleared."""
    DROP = "drop"
    """Lose one byte in ``count`` bursts (same parameters as corrupt)."""
    SLOW = "slow"
    """Delay every reply by ``delay_s`` seconds."""
    PULL_KEY = "pull_key"
    """Pull the key out after ``after_chunks`` chunks of the next write were staged."""
    DISCONNECT = "disconnect"
    """Drop the link after ``after_chunks`` chunks of the next write (omit: now)."""
    CLEAR = "clear"
    """Remove every fault."""


_DIRECTIONS = ("rx", "tx", "both")


def _int(params: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = params.pop(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name}: must be an integer {lo}..{hi}, not {value!r}")
    return value


@dataclass
class FaultPlan:
    """The faults in force. Counters count down as faults are applied; -1 never does."""

    corrupt_rx: int = 0
    corrupt_tx: int = 0
    drop_rx: int = 0
    drop_tx: int = 0
    every: int = 1
    reply_delay_s: float = 0.0
    pull_key_after_chunks: int | None = None
    disconnect_after_chunks: int | None = None
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def state(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_rng")
        out.pop("_seen")
        return out

    def clear(self) -> None:
        self.corrupt_rx = self.corrupt_tx = self.drop_rx = self.drop_tx = 0
        self.every = 1
        self._seen.clear()
        self.reply_delay_s = 0.0
        self.pull_key_after_chunks = None
        self.disconnect_after_chunks = None

    def set(self, kind: str, **params: Any) -> dict[str, Any]:
        """Apply a fault by name (see :class:`FaultKind`); returns the new state.

        Raises ``ValueError`` naming the parameter that is missing, unknown or invalid."""
        try:
            fault = FaultKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"kind: {kind!r} is not a fault (known: {known})") from None
        if fault is FaultKind.CLEAR:
            self.clear()
        elif fault in (FaultKind.CORRUPT, FaultKind.DROP):
            count = _int(params, "count", 1, -1, 1_000_000)
            self.every = _int(params, "every", 1, 1, 1_000_000)
            self._seen.clear()
            direction = params.pop("direction", "both")
            if direction not in _DIRECTIONS:
                raise ValueError(f"direction: must be one of {', '.join(_DIRECTIONS)}")
            prefix = "corrupt" if fault is FaultKind.CORRUPT else "drop"
            if direction in ("rx", "both"):
                setattr(self, f"{prefix}_rx", count)
            if direction in ("tx", "both"):
                setattr(self, f"{prefix}_tx", count)
        elif fault is FaultKind.SLOW:
            delay = params.pop("delay_s", None)
            if isinstance(delay, bool) or not isinstance(delay, int | float):
                raise ValueError("delay_s: required, a number of seconds")
            if not 0 <= delay <= 60:
                raise ValueError(f"delay_s: {delay} is outside 0..60")
            self.reply_delay_s = float(delay)
        elif fault is FaultKind.PULL_KEY:
            self.pull_key_after_chunks = _int(params, "after_chunks", 0, 0, 1_000_000)
        else:
            self.disconnect_after_chunks = _int(params, "after_chunks", 0, 0, 1_000_000)
        if "seed" in params:
            self.seed = _int(params, "seed", 0, 0, 2**31)
            self._rng.seed(self.seed)
        if params:
            raise ValueError(f"{sorted(params)[0]}: unknown parameter for fault {fault.value}")
        return self.state()

    # ------------------------------------------------------------------ line faults

    def _take(self, name: str) -> bool:
        left: int = getattr(self, name)
        if left == 0:
            return False
        seen = self._seen[name] = self._seen.get(name, 0) + 1
        if seen % self.every:
            return False
        if left > 0:
            setattr(self, name, left - 1)
        return True

    def _mangle(self, data: bytes, corrupt: str, drop: str) -> bytes:
        if not data:
            return data
        if self._take(corrupt):
            buf = bytearray(data)
            buf[self._rng.randrange(len(buf))] ^= self._rng.randrange(1, 256)
            data = bytes(buf)
        if self._take(drop):
            i = self._rng.randrange(len(data))
            data = data[:i] + data[i + 1 :]
        return data

    def on_rx(self, data: bytes) -> bytes:
        """Bytes as the station receives them (one read of the line)."""
        return self._mangle(data, "corrupt_rx", "drop_rx")

    def on_tx(self, frame: bytes) -> bytes:
        """Bytes of one frame as they leave the station."""
        return self._mangle(frame, "corrupt_tx", "drop_tx")
