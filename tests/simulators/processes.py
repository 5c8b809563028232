"""A simulator's command line as a process: started until it says where it listens, stopped
with SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]


def start_simulator(argv: Sequence[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run ``argv`` and read the ``{"listening": ...}`` line it prints once it serves."""
    proc = subprocess.Popen(
        list(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"the simulator printed nothing; stderr: {err}")
    return proc, json.loads(line)["listening"]


def stop_simulator(proc: subprocess.Popen[str]) -> int:
    """SIGTERM ``proc`` and return its exit code (killed if it does not stop in 10 s)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
