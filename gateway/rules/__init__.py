"""The rules engine: pure derivation of every credential's, controller's and cylinder's
desired state from the facts and a time, incremental, with ``explain``. No I/O."""

from __future__ import annotations

from gateway.rules.engine import Changes, RulesEngine, same_state
from gateway.rules.evaluate import Check, DesiredCredential, Grant, evaluate
from gateway.rules.explain import Explanation, LockAccess, LockRef, explain
from gateway.rules.factset import FactSet
from gateway.rules.hardware import (
    AllowListEntry,
    DesiredBlacklist,
    DesiredController,
    KeyExposure,
)
from gateway.rules.parameters import RulesConfig
from gateway.rules.reasons import DESCRIPTIONS, REVOCATION_REASONS, Reason

__all__ = [
    "DESCRIPTIONS",
    "REVOCATION_REASONS",
    "AllowListEntry",
    "Changes",
    "Check",
    "DesiredBlacklist",
    "DesiredController",
    "DesiredCredential",
    "Explanation",
    "FactSet",
    "Grant",
    "KeyExposure",
    "LockAccess",
    "LockRef",
    "Reason",
    "RulesConfig",
    "RulesEngine",
    "evaluate",
    "explain",
    "same_state",
]
