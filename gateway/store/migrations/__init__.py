"""Alembic environment of the store; run it through :mod:`gateway.store.migrate`."""
