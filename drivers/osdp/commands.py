"""The reader commands the panel sends, as the OSDP library's command dicts.

Times on the wire are in units of 100 ms (``osdp_OUT`` timer, ``osdp_LED`` on/off times and
timer, ``osdp_BUZ`` on/off times); the library's Python binding carries the timers in one
byte, hence at most 25.5 s.
"""

from __future__ import annotations

from typing import Any

import osdp

from drivers.osdp.options import ReaderConfig

GREEN = osdp.CommandLEDColor.Green
RED = osdp.CommandLEDColor.Red
BLACK = osdp.CommandLEDColor.Black

OUT_PERMANENT_OFF = 1
OUT_PERMANENT_ON = 2
OUT_TEMPORARY_ON = 5
LED_TEMPORARY_SET = 2
BUZZER_DEFAULT_TONE = 2


def ticks(seconds: float) -> int:
    """Seconds in units of 100 ms, 1..255."""
    return max(1, min(255, round(seconds * 10)))


def strike_pulse(reader: ReaderConfig, seconds: float) -> dict[str, Any]:
    """Energise the strike relay for ``seconds``, then back to its permanent state."""
    return {
        "command": osdp.Command.Output,
        "output_no": reader.output,
        "control_code": OUT_TEMPORARY_ON,
        "timer_count": ticks(seconds),
    }


def strike_hold(reader: ReaderConfig, energised: bool) -> dict[str, Any]:
    """Set the strike relay's permanent state (held open or locked), ending any pulse."""
    return {
        "command": osdp.Command.Output,
        "output_no": reader.output,
        "control_code": OUT_PERMANENT_ON if energised else OUT_PERMANENT_OFF,
        "timer_count": 0,
    }


def led_flash(reader: ReaderConfig, color: int, seconds: float) -> dict[str, Any]:
    """Show ``color`` steadily for ``seconds`` (a temporary state), then the LED's
    permanent state again."""
    t = ticks(seconds)
    return {
        "command": osdp.Command.LED,
        "reader": reader.reader_no,
        "led_number": reader.led,
        "temporary": True,
        "control_code": LED_TEMPORARY_SET,
        "on_count": t,
        "off_count": 0,
        "on_color": color,
        "off_color": BLACK,
        "timer_count": t,
    }


def beep(reader: ReaderConfig) -> dict[str, Any]:
    """One short beep (200 ms) in the reader's default tone."""
    return {
        "command": osdp.Command.Buzzer,
        "reader": reader.reader_no,
        "control_code": BUZZER_DEFAULT_TONE,
        "on_count": 2,
        "off_count": 1,
        "rep_count": 1,
    }


__all__ = ["beep", "led_flash", "strike_hold", "strike_pulse", "ticks"]
