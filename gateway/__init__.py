"""lockgate: a lock-system integration gateway for CLIQ-style keys and online door controllers."""

from __future__ import annotations

__version__ = "0.1.0"
