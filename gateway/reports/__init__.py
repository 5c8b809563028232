"""Operator reports: access applications awaiting a decision, things about to lapse."""

from __future__ import annotations

from gateway.reports.applications import (
    ApplicationDue,
    add_working_days,
    due_at,
    due_day,
    is_working_day,
    pending_applications,
    swedish_holidays,
    working_days_between,
)
from gateway.reports.expiring import ExpiringItem, ExpiringKind, expiring

__all__ = [
    "ApplicationDue",
    "ExpiringItem",
    "ExpiringKind",
    "add_working_days",
    "due_at",
    "due_day",
    "expiring",
    "is_working_day",
    "pending_applications",
    "swedish_holidays",
    "working_days_between",
]
