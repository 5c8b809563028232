"""Core roles and failover: several core instances on one PostgreSQL, exactly one of them the
leader at a time.

- :mod:`~gateway.leadership.lease` — the lease row in PostgreSQL: acquire (a new, larger
  fencing token), renew, release, read;
- :mod:`~gateway.leadership.runner` — :class:`CoreLeadership`, the loop of
  ``lockgate run --role core``: stand by until the lease is free, then build and run the
  gateway with the fencing token on its store, renew the lease, and stop the gateway the
  moment the lease is lost (or a write is fenced out).

The fencing check itself is in the store (:mod:`gateway.store.fencing`).
"""

from __future__ import annotations

from gateway.leadership.lease import LeaseStore, LeaseView
from gateway.leadership.runner import CoreLeadership, GatewayFactory, OnElected, Takeover

__all__ = [
    "CoreLeadership",
    "GatewayFactory",
    "LeaseStore",
    "LeaseView",
    "OnElected",
    "Takeover",
]
