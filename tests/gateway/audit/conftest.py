"""Fixtures: a migrated database per module (SQLite and PostgreSQL), emptied per test."""

from __future__ import annotations

from tests.gateway.audit.util import db, shared_url

__all__ = ["db", "shared_url"]
