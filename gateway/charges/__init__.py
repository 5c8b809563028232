"""Lost-card charges: the NOK 400 a lost employee card costs its holder
(:mod:`~gateway.charges.recorder`)."""

from __future__ import annotations

from gateway.charges.recorder import LOST_REASON, Charge, ChargeRecorder, charges, prune

__all__ = ["LOST_REASON", "Charge", "ChargeRecorder", "charges", "prune"]
