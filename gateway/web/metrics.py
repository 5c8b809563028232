"""The Prometheus metrics of ``/metrics`` (documented in docs/operations.md).

Counters and the latency histogram are updated as requests are served; the gauges (sync
jobs, unconfirmed revocations, device availability, audit anchor age) are read from the
store at each scrape. Each application has its own registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.orm import Session

from gateway.audit import log as audit_log
from gateway.core import Core
from gateway.store import device_records
from gateway.web.views import job_summary


@dataclass
class StoreGauges:
    """What the gauges show, read from the store in one transaction."""

    jobs: dict[str, tuple[int, float]] = field(default_factory=dict)
    revocations: int = 0
    revocation_oldest_s: float = 0.0
    devices: list[tuple[str, str, bool]] = field(default_factory=list)
    audit_head_age_s: float | None = None


def read_gauges(core: Core) -> StoreGauges:
    """On the core thread: the gauges' values now."""
    now = core.clock()
    out = StoreGauges()
    with core.db.session(readonly=True) as s:
        counts = job_summary(s, limit=0).counts
        for kind in ("key", "controller"):
            mine = [v for (k, _), v in counts.items() if k == kind]
            oldest = min((o for _, o in mine), default=None)
            out.jobs[kind] = (sum(n for n, _ in mine), _age(now, oldest))
        revocations = [v for (_, revoking), v in counts.items() if revoking]
        out.revocations = sum(n for n, _ in revocations)
        out.revocation_oldest_s = _age(now, min((o for _, o in revocations), default=None))
        out.devices = [(d.device_id, d.role, d.online) for d in device_records.device_statuses(s)]
        out.audit_head_age_s = _audit_age(s, now)
    return out


def _audit_age(s: Session, now: datetime) -> float | None:
    head = audit_log.head(s)
    return None if head is None else _age(now, head.at)


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


class WebMetrics:
    """The metrics registry of one running console/API."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lockgate_requests",
            "Requests applied through the HTTP API and the console, by request name and "
            "outcome (ok, duplicate, or the error code).",
            ["name", "outcome", "source"],
            registry=r,
        )
        self.latency = Histogram(
            "lockgate_request_seconds",
            "Time to apply one request (HTTP API and console), from receipt to response.",
            ["name"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.events = Counter(
            "lockgate_events_received",
            "Events the devices reported (access decisions, door alarms, programming "
            "results), by kind.",
            ["kind"],
            registry=r,
        )
        self.jobs = Gauge(
            "lockgate_sync_jobs_pending", "Sync jobs waiting, by kind.", ["kind"], registry=r
        )
        self.job_age = Gauge(
            "lockgate_sync_job_oldest_age_seconds",
            "Age of the oldest waiting sync job, by kind (0 when none).",
            ["kind"],
            registry=r,
        )
        self.revocations = Gauge(
            "lockgate_revocations_unconfirmed",
            "Revocations that no device has confirmed yet (revocation sync jobs).",
            registry=r,
        )
        self.revocation_age = Gauge(
            "lockgate_revocation_oldest_age_seconds",
            "Age of the oldest unconfirmed revocation (0 when none).",
            registry=r,
        )
        self.device_online = Gauge(
            "lockgate_device_online",
            "1 when the device (station or controller) is reachable, 0 when not.",
            ["device", "role"],
            registry=r,
        )
        self.audit_age = Gauge(
            "lockgate_audit_head_age_seconds",
            "Age of the newest audit entry, the head the audit anchor publishes.",
            registry=r,
        )

        self.leader = Gauge(
            "lockgate_core_leader",
            "1 while this instance leads (always with --role all), 0 on a standby core.",
            registry=r,
        )

    def observe(self, name: str, outcome: str, source: str, seconds: float) -> None:
        self.requests.labels(name, outcome, source).inc()
        self.latency.labels(name).observe(seconds)

    def render(self, gauges: StoreGauges, *, leading: bool = True) -> bytes:
        self.leader.set(1 if leading else 0)
        for kind, (count, age) in gauges.jobs.items():
            self.jobs.labels(kind).set(count)
            self.job_age.labels(kind).set(age)
        self.revocations.set(gauges.revocations)
        self.revocation_age.set(gauges.revocation_oldest_s)
        self.device_online.clear()
        for device, role, online in gauges.devices:
            self.device_online.labels(device, role).set(1 if online else 0)
        if gauges.audit_head_age_s is not None:
            self.audit_age.set(gauges.audit_head_age_s)
        return generate_latest(self.registry)


def standby_metrics() -> bytes:
    """``/metrics`` of a standby core: only ``lockgate_core_leader 0`` (the store's gauges
    and the request counters belong to the leader)."""
    registry = CollectorRegistry()
    Gauge(
        "lockgate_core_leader",
        "1 while this instance leads (always with --role all), 0 on a standby core.",
        registry=registry,
    ).set(0)
    return generate_latest(registry)


class EventCounter:
    """A sync sink that counts the events the devices report (for ``/metrics``)."""

    def __init__(self, metrics: WebMetrics) -> None:
        self.metrics = metrics

    def availability(self, session: Session, device_id: str, online: bool, reason: str) -> None:
        pass

    def credential_state(self, session: Session, core: Core, number: str) -> None:
        pass

    def event(self, session: Session, kind: str, body: dict[str, Any]) -> None:
        self.metrics.events.labels(kind).inc()


__all__ = ["EventCounter", "StoreGauges", "WebMetrics", "read_gauges"]
