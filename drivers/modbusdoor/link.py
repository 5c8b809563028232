"""A Modbus master link (TCP or RTU) that speaks in the driver contract's errors.

:class:`ModbusLink` wraps one pymodbus async client. It connects on demand, runs one request
at a time, checks that every reply is the reply to *that* request (unit, function code,
address, byte count, and whatever the caller's ``validate`` says about the content) and turns
every failure into :class:`~drivers.base.DeviceUnavailable`,
:class:`~drivers.base.DeviceTimeout` or :class:`~drivers.base.ProtocolError` naming the
register concerned.

A reply must never answer a later request. On TCP the transaction id sees to that: pymodbus
skips a reply whose id is not the one of the request it waits for. An RTU reply carries no
id, so on RTU the link retransmits itself (pymodbus sends each request once): after a
request got no reply within ``timeout_s``, or a reply that does not fit it, the link closes
the serial port, lets the line stay unheard for another ``timeout_s`` (a late reply lands in a
closed port, and opening the port again discards whatever was left) and only then sends
again. A reply later than twice ``timeout_s`` is taken to be lost. After a lost connection or
a cancelled request the link is dropped and reopened by the next request in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from drivers.base import DeviceTimeout, DeviceUnavailable, DriverError, ProtocolError

log = logging.getLogger(__name__)

T = TypeVar("T")
Transport = Literal["tcp", "rtu"]
Client = AsyncModbusTcpClient | AsyncModbusSerialClient

FC_READ_COILS = 1
FC_READ_DISCRETE_INPUTS = 2
FC_READ_HOLDING = 3
FC_READ_INPUT = 4
FC_WRITE_COIL = 5
FC_WRITE_REGISTER = 6
FC_WRITE_REGISTERS = 16

_TRANSIENT_EXCEPTIONS = {
    ExcCodes.ACKNOWLEDGE,
    ExcCodes.DEVICE_BUSY,
    ExcCodes.GATEWAY_PATH_UNAVIABLE,
    ExcCodes.GATEWAY_NO_RESPONSE,
}


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Where and how to reach the controller.

    ``port`` is the TCP port for ``tcp`` and the serial device path or pyserial URL for
    ``rtu``. ``timeout_s`` bounds the wait for each reply; a request is sent ``retries`` more
    times before it fails with :class:`DeviceTimeout` (on RTU each retransmission follows
    ``timeout_s`` of silence, see the module documentation)."""

    transport: Transport
    port: int | str
    host: str = ""
    baudrate: int = 19200
    unit: int = 1
    timeout_s: float = 1.0
    retries: int = 2

    @property
    def where(self) -> str:
        if self.transport == "tcp":
            return f"modbus tcp {self.host}:{self.port} unit {self.unit}"
        return f"modbus rtu {self.port} @{self.baudrate} unit {self.unit}"


class ModbusLink:
    """One Modbus master connection. Not safe for concurrent multi-step use: callers that
    need several requests to belong together hold their own lock."""

    def __init__(self, settings: LinkSettings, *, device_id: str | None = None) -> None:
        self.settings = settings
        self.device_id = device_id
        self.requests = 0
        """Requests sent so far (pymodbus retransmissions not counted)."""
        self._client: Client | None = None
        self._lost: asyncio.Future[None] | None = None
        self._quiet_until = 0.0
        """RTU: the port stays closed until then, so that a late reply is not heard."""
        self.shut = False
        """Set by the driver's ``close()``: no request may reopen the link until ``open()``."""

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._client is not None and self._lost is not None and not self._lost.done()

    async def connect(self) -> None:
        """Open the connection if it is not open. Raises :class:`DeviceUnavailable`."""
        if self.shut:
            raise self._unavailable(f"{self.settings.where}: the driver is closed")
        if self.connected:
            return
        self.close()
        s = self.settings
        wait = self._quiet_until - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_connection(up: bool) -> None:
            if not up and not lost.done():
                lost.set_result(None)

        client: Client
        if s.transport == "tcp":
            client = AsyncModbusTcpClient(
                s.host,
                port=int(s.port),
                timeout=s.timeout_s,
                retries=s.retries,
                reconnect_delay=0,
                trace_connect=on_connection,
            )
        else:
            client = AsyncModbusSerialClient(
                str(s.port),
                baudrate=s.baudrate,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=s.timeout_s,
                retries=0,  # retransmitted by the link, after the line fell silent
                reconnect_delay=0,
                trace_connect=on_connection,
            )
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as exc:
            client.close()
            raise self._unavailable(f"cannot connect to {s.where}: {exc}") from exc
        if not ok:
            client.close()
            raise self._unavailable(f"cannot connect to {s.where}")
        self._client = client
        self._lost = lost

    def close(self, *, quiet: bool = False) -> None:
        """Close the connection; the next request reopens it. Idempotent.

        ``quiet`` (RTU): keep the port closed for ``timeout_s``, so that a reply still on its
        way to an abandoned request is not heard by the next one."""
        if quiet and self.settings.transport == "rtu":
            loop = asyncio.get_running_loop()
            self._quiet_until = max(self._quiet_until, loop.time() + self.settings.timeout_s)
        client, self._client = self._client, None
        if self._lost is not None and not self._lost.done():
            self._lost.cancel()
        self._lost = None
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ requests

    async def read_input(
        self,
        address: int,
        count: int,
        what: str,
        validate: Callable[[list[int]], object] | None = None,
    ) -> list[int]:
        """Read input registers. ``validate`` checks the content (raising ``ValueError``):
        a reply it refuses is not the reply to this read."""
        return await self._execute(
            what,
            FC_READ_INPUT,
            lambda c: c.read_input_registers(address, count=count, device_id=self.settings.unit),
            lambda reply: self._registers(reply, count, validate),
        )

    async def read_holding(self, address: int, count: int, what: str) -> list[int]:
        return await self._execute(
            what,
            FC_READ_HOLDING,
            lambda c: c.read_holding_registers(address, count=count, device_id=self.settings.unit),
            lambda reply: self._registers(reply, count, None),
        )

    async def read_discrete_inputs(self, address: int, count: int, what: str) -> list[bool]:
        def bits(reply: ModbusPDU) -> list[bool]:
            values = list(reply.bits)
            # A reply carries whole bytes: at least ``count`` bits, at most 7 of padding.
            if not count <= len(values) < count + 8:
                raise _Mismatch(f"{len(values)} bits in reply to a read of {count}")
            return values[:count]

        return await self._execute(
            what,
            FC_READ_DISCRETE_INPUTS,
            lambda c: c.read_discrete_inputs(address, count=count, device_id=self.settings.unit),
            bits,
        )

    async def write_registers(self, address: int, values: Sequence[int], what: str) -> None:
        def confirmed(reply: ModbusPDU) -> None:
            if reply.address != address or reply.count != len(values):
                raise _Mismatch(
                    f"reply confirms {reply.count} registers at {reply.address:#06x}, "
                    f"wrote {len(values)} at {address:#06x}"
                )

        await self._execute(
            what,
            FC_WRITE_REGISTERS,
            lambda c: c.write_registers(address, list(values), device_id=self.settings.unit),
            confirmed,
        )

    async def write_register(self, address: int, value: int, what: str) -> int:
        """Write one register and return the value the controller echoed."""

        def echo(reply: ModbusPDU) -> int:
            if reply.address != address or len(reply.registers) != 1:
                raise _Mismatch(f"reply is for register {reply.address:#06x}")
            return int(reply.registers[0])

        return await self._execute(
            what,
            FC_WRITE_REGISTER,
            lambda c: c.write_register(address, value, device_id=self.settings.unit),
            echo,
        )

    async def write_coil(self, address: int, value: bool, what: str) -> bool:
        """Write one coil and return the state the controller echoed."""

        def echo(reply: ModbusPDU) -> bool:
            if reply.address != address or not reply.bits:
                raise _Mismatch(f"reply is for coil {reply.address:#06x}")
            return bool(reply.bits[0])

        return await self._execute(
            what,
            FC_WRITE_COIL,
            lambda c: c.write_coil(address, value, device_id=self.settings.unit),
            echo,
        )

    # ------------------------------------------------------------------ internals

    async def _execute(
        self,
        what: str,
        function_code: int,
        call: Callable[[Client], Awaitable[ModbusPDU]],
        accept: Callable[[ModbusPDU], T],
    ) -> T:
        """Send the request and return ``accept(reply)``; on RTU retransmit after silence
        when no reply came or the reply does not fit (``accept`` raises ``_Mismatch``)."""
        s = self.settings
        attempts = s.retries + 1 if s.transport == "rtu" else 1
        self.requests += 1
        mismatch: _Mismatch | None = None
        for _ in range(attempts):
            try:
                reply = await self._send_once(what, call)
            except _NoReply:
                mismatch = None
                continue
            try:
                if isinstance(reply, ExceptionResponse) or reply.isError():
                    self._check_exception(reply, what)
                if reply.function_code != function_code:
                    raise _Mismatch(
                        f"reply has function code {reply.function_code}, "
                        f"request had {function_code}"
                    )
                if reply.dev_id not in (0, s.unit):
                    raise _Mismatch(f"reply is from unit {reply.dev_id}, asked unit {s.unit}")
                return accept(reply)
            except _Mismatch as exc:
                if s.transport != "rtu":
                    raise self._protocol(str(exc), what, exc.field) from None
                log.warning("%s: %s: %s; the line is out of step", s.where, what, exc)
                self.close(quiet=True)
                mismatch = exc
        if mismatch is not None:
            raise self._protocol(f"{mismatch} (after {attempts} attempts)", what, mismatch.field)
        tries = attempts if s.transport == "rtu" else s.retries + 1
        raise DeviceTimeout(
            f"{what}: no reply from {s.where} within {s.timeout_s:g} s after {tries} attempts",
            device_id=self.device_id,
        )

    async def _send_once(
        self, what: str, call: Callable[[Client], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        await self.connect()
        client, lost = self._client, self._lost
        assert client is not None
        assert lost is not None

        async def run() -> ModbusPDU:
            return await call(client)

        request = asyncio.create_task(run(), name=f"modbus request: {what}")
        try:
            waiters: set[asyncio.Future[Any]] = {request, lost}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._abandon(request)
            raise
        if not request.done():
            await self._abandon(request)
            raise self._unavailable(f"connection to {self.settings.where} lost during {what}")
        try:
            return request.result()
        except ModbusIOException as exc:
            self.close(quiet=True)
            if "No response" in str(exc):
                raise _NoReply() from exc
            raise self._protocol(str(exc), what) from exc
        except ConnectionException as exc:
            self.close(quiet=True)
            raise self._unavailable(f"{what}: {self.settings.where}: {exc}") from exc
        except ModbusException as exc:
            self.close(quiet=True)
            raise self._protocol(str(exc), what) from exc
        except (TimeoutError, OSError) as exc:
            self.close(quiet=True)
            raise self._unavailable(f"{what}: {self.settings.where}: {exc!r}") from exc

    async def _abandon(self, request: asyncio.Future[ModbusPDU]) -> None:
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, ModbusException, OSError):
            await request
        self.close(quiet=True)

    def _check_exception(self, reply: ModbusPDU, what: str) -> None:
        code = getattr(reply, "exception_code", 0)
        try:
            name = ExcCodes(code).name
        except ValueError:
            name = "unknown exception code"
        message = f"controller answered exception {code:#04x} ({name})"
        if code in _TRANSIENT_EXCEPTIONS:
            raise self._unavailable(f"{what}: {message}")
        raise self._protocol(message, what)

    def _registers(
        self, reply: ModbusPDU, count: int, validate: Callable[[list[int]], object] | None
    ) -> list[int]:
        registers = list(reply.registers)
        if len(registers) != count:
            raise _Mismatch(f"{len(registers)} registers in reply to a read of {count}")
        if validate is not None:
            try:
                validate(registers)
            except ValueError as exc:
                raise _Mismatch(str(exc), getattr(exc, "field", None)) from None
        return registers

    def _protocol(self, message: str, what: str, field: str | None = None) -> ProtocolError:
        return ProtocolError(f"{what}: {message}", device_id=self.device_id, field=field or what)

    def _unavailable(self, message: str) -> DriverError:
        return DeviceUnavailable(message, device_id=self.device_id)


class _NoReply(Exception):
    """No reply within the timeout."""


class _Mismatch(Exception):
    """A reply that is not the reply to the request it arrived for; ``field`` names the
    offending field when the content was refused."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
