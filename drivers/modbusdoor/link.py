"""A Modbus master link (TCP or RTU) that speaks in the driver contract's errors.

:class:`ModbusLink` wraps one pymodbus async client. It connects on demand, runs one request
at a time, checks that every reply is the reply to *that* request (function code, address,
length) and turns every failure into :class:`~drivers.base.DeviceUnavailable`,
:class:`~drivers.base.DeviceTimeout` or :class:`~drivers.base.ProtocolError` naming the
register concerned. After a timeout, a lost connection or a cancelled request the link is
dropped and reopened by the next request, so a late reply to an abandoned request can never
be taken for the reply to a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from drivers.base import DeviceTimeout, DeviceUnavailable, DriverError, ProtocolError

log = logging.getLogger(__name__)

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
    times before it fails with :class:`DeviceTimeout`."""

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

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._client is not None and self._lost is not None and not self._lost.done()

    async def connect(self) -> None:
        """Open the connection if it is not open. Raises :class:`DeviceUnavailable`."""
        if self.connected:
            return
        self.close()
        s = self.settings
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
                retries=s.retries,
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

    def close(self) -> None:
        """Close the connection; the next request reopens it. Idempotent."""
        client, self._client = self._client, None
        if self._lost is not None and not self._lost.done():
            self._lost.cancel()
        self._lost = None
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ requests

    async def read_input(self, address: int, count: int, what: str) -> list[int]:
        reply = await self._execute(
            what,
            FC_READ_INPUT,
            lambda c: c.read_input_registers(address, count=count, device_id=self.settings.unit),
        )
        return self._registers(reply, count, what)

    async def read_holding(self, address: int, count: int, what: str) -> list[int]:
        reply = await self._execute(
            what,
            FC_READ_HOLDING,
            lambda c: c.read_holding_registers(address, count=count, device_id=self.settings.unit),
        )
        return self._registers(reply, count, what)

    async def read_discrete_inputs(self, address: int, count: int, what: str) -> list[bool]:
        reply = await self._execute(
            what,
            FC_READ_DISCRETE_INPUTS,
            lambda c: c.read_discrete_inputs(address, count=count, device_id=self.settings.unit),
        )
        bits = list(reply.bits)
        # A reply carries whole bytes: at least ``count`` bits, at most 7 of padding.
        if not count <= len(bits) < count + 8:
            raise self._protocol(f"{len(bits)} bits in reply to a read of {count}", what)
        return bits[:count]

    async def write_registers(self, address: int, values: Sequence[int], what: str) -> None:
        reply = await self._execute(
            what,
            FC_WRITE_REGISTERS,
            lambda c: c.write_registers(address, list(values), device_id=self.settings.unit),
        )
        if reply.address != address or reply.count != len(values):
            raise self._protocol(
                f"reply confirms {reply.count} registers at {reply.address:#06x}, "
                f"wrote {len(values)} at {address:#06x}",
                what,
            )

    async def write_register(self, address: int, value: int, what: str) -> int:
        """Write one register and return the value the controller echoed."""
        reply = await self._execute(
            what,
            FC_WRITE_REGISTER,
            lambda c: c.write_register(address, value, device_id=self.settings.unit),
        )
        if reply.address != address or len(reply.registers) != 1:
            raise self._protocol(f"reply is for register {reply.address:#06x}", what)
        return int(reply.registers[0])

    async def write_coil(self, address: int, value: bool, what: str) -> bool:
        """Write one coil and return the state the controller echoed."""
        reply = await self._execute(
            what,
            FC_WRITE_COIL,
            lambda c: c.write_coil(address, value, device_id=self.settings.unit),
        )
        if reply.address != address or not reply.bits:
            raise self._protocol(f"reply is for coil {reply.address:#06x}", what)
        return bool(reply.bits[0])

    # ------------------------------------------------------------------ internals

    async def _execute(
        self, what: str, function_code: int, call: Callable[[Client], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        await self.connect()
        client, lost = self._client, self._lost
        assert client is not None
        assert lost is not None
        self.requests += 1

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
            reply = request.result()
        except ModbusIOException as exc:
            self.close()
            if "No response" in str(exc):
                raise DeviceTimeout(
                    f"{what}: no reply from {self.settings.where} within "
                    f"{self.settings.timeout_s:g} s after {self.settings.retries + 1} attempts",
                    device_id=self.device_id,
                ) from exc
            raise self._protocol(str(exc), what) from exc
        except ConnectionException as exc:
            self.close()
            raise self._unavailable(f"{what}: {self.settings.where}: {exc}") from exc
        except ModbusException as exc:
            self.close()
            raise self._protocol(str(exc), what) from exc
        except (TimeoutError, OSError) as exc:
            self.close()
            raise self._unavailable(f"{what}: {self.settings.where}: {exc!r}") from exc
        return self._check_reply(reply, function_code, what)

    async def _abandon(self, request: asyncio.Future[ModbusPDU]) -> None:
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, ModbusException, OSError):
            await request
        self.close()

    def _check_reply(self, reply: ModbusPDU, function_code: int, what: str) -> ModbusPDU:
        if isinstance(reply, ExceptionResponse) or reply.isError():
            code = getattr(reply, "exception_code", 0)
            try:
                name = ExcCodes(code).name
            except ValueError:
                name = "unknown exception code"
            message = f"controller answered exception {code:#04x} ({name})"
            if code in _TRANSIENT_EXCEPTIONS:
                raise self._unavailable(f"{what}: {message}")
            raise self._protocol(message, what)
        if reply.function_code != function_code:
            raise self._protocol(
                f"reply has function code {reply.function_code}, request had {function_code}",
                what,
            )
        return reply

    def _registers(self, reply: ModbusPDU, count: int, what: str) -> list[int]:
        registers = list(reply.registers)
        if len(registers) != count:
            raise self._protocol(f"{len(registers)} registers in reply to a read of {count}", what)
        return registers

    def _protocol(self, message: str, what: str) -> ProtocolError:
        return ProtocolError(f"{what}: {message}", device_id=self.device_id, field=what)

    def _unavailable(self, message: str) -> DriverError:
        return DeviceUnavailable(message, device_id=self.device_id)
