"""The control interface of simulators: JSON lines over a local TCP socket.

A test bench (or the demo) drives a simulator through it: insert a key, make a key visit a
cylinder, present a tag at a door, cut a controller's power. Each request is one line of
JSON ``{"cmd": NAME, ...arguments}``; each reply one line ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": MESSAGE}``. Commands are registered by the simulator that owns the
server; ``{"cmd": "help"}`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

Handler = Callable[..., Awaitable[Any]]

MAX_LINE = 1 << 20


class ControlError(Exception):
    """A control command failed; the message is sent back to the caller."""


class ControlServer:
    """Serves registered commands on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._handlers: dict[str, tuple[Handler, str]] = {}
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.register("help", self._help, "list the commands")

    def register(self, name: str, handler: Handler, doc: str = "") -> None:
        """Register ``handler(**arguments)`` as command ``name``."""
        self._handlers[name] = (handler, doc)

    async def _help(self) -> dict[str, str]:
        return {name: doc for name, (_, doc) in sorted(self._handlers.items())}

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("control server is not started")
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, self._host, self._port, limit=MAX_LINE
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            for task in list(self._clients):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._server.wait_closed()
            self._server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while line := await reader.readline():
                reply = await self._dispatch(line)
                writer.write(json.dumps(reply, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"ok": False, "error": f"request is not JSON: {exc}"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": "cmd: a request is an object with a string 'cmd'"}
        name = request.pop("cmd")
        entry = self._handlers.get(name)
        if entry is None:
            return {"ok": False, "error": f"cmd: unknown command {name!r}; try 'help'"}
        try:
            return {"ok": True, "result": await entry[0](**request)}
        except TypeError as exc:
            return {"ok": False, "error": f"{name}: bad arguments: {exc}"}
        except (ControlError, ValueError, KeyError, LookupError) as exc:
            return {"ok": False, "error": f"{name}: {exc}"}


class ControlClient:
    """Async client of a :class:`ControlServer`."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self._host, self._port, limit=MAX_LINE
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> ControlClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, cmd: str, **arguments: Any) -> Any:
        """Run ``cmd`` and return its result; raise :class:`ControlError` on failure."""
        if self._reader is None or self._writer is None:
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        async with self._lock:
            self._writer.write(json.dumps({"cmd": cmd, **arguments}).encode() + b"\n")
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise ControlError("control connection closed")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error")))
        return reply.get("result")


# ------------------------------------------------------------------- arguments of commands


def int_arg(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an integer argument ``name`` (within ``low..high`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"{name}: must be in {low}..{high}, got {value}")
    return value


def number_arg(name: str, value: Any, low: float, high: float, *, what: str = "a number") -> float:
    """``value`` as a number argument ``name`` in ``low..high`` (``what`` names its unit)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low:g}..{high:g}, got {value}")
    return float(value)


def bool_arg(name: str, value: Any) -> bool:
    """``value`` as a JSON boolean argument ``name`` (no truthy strings or numbers)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    return value


# ------------------------------------------------------------- a server with its controls


class Server(Protocol):
    """What a simulator serves on the wire (Modbus, UHPPOTE UDP/TCP, ...)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class ControlledSimulator:
    """A simulated device's wire ``server`` plus (``control_port`` not None) a control server
    carrying the commands :meth:`_register` adds. ``control_port`` None runs no control server
    (in-process users call the methods)."""

    def __init__(
        self,
        server: Server,
        *,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
    ) -> None:
        self._wire = server
        self.control: ControlServer | None = None
        if control_port is not None:
            self.control = ControlServer(host=control_host, port=control_port)
            self._register(self.control)

    def _register(self, control: ControlServer) -> None:
        """Register this simulator's commands on ``control``."""
        raise NotImplementedError

    async def start(self) -> None:
        await self._wire.start()
        if self.control is not None:
            try:
                await self.control.start()
            except BaseException:
                await self._wire.close()
                raise

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self._wire.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
