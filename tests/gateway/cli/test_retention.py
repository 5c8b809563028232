"""``lockgate retention run``: administrators and maintenance operators erase old data."""

from __future__ import annotations

import json
from datetime import timedelta

from gateway.domain.timeutil import utcnow
from gateway.store import device_records as sync_store
from gateway.store.database import Database
from tests import sample
from tests.gateway.audit.util import add_operator
from tests.gateway.cli.util import lockgate, site, token


def old_event(db: Database) -> None:
    at = utcnow() - timedelta(days=800)
    with db.session() as s:
        sync_store.add_controller_events(
            s,
            [
                sync_store.StoredControllerEvent(
                    sample.CONTROLLER, 1, 1, "granted", sample.TAG_ANNA, 1, at
                )
            ],
            at,
        )


def test_a_dry_run_shows_and_a_run_erases(db: Database) -> None:
    site(db)
    add_operator(db, "cron", "maintenance")
    old_event(db)
    dry = lockgate(
        db, "retention", "run", "--dry-run", "--json", operator="cron", token=token("cron")
    )
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["controller_events"] == 1
    done = lockgate(db, "retention", "run", operator="cron", token=token("cron"))
    assert done.exit_code == 0, done.stderr
    assert "erased: 1 controller events" in done.stdout
    again = lockgate(db, "retention", "run", operator="admin", token=token("admin"))
    assert "erased: nothing" in again.stdout


def test_reception_may_not_run_it(db: Database) -> None:
    site(db)
    out = lockgate(db, "retention", "run", operator="desk", token=token("desk"))
    assert out.exit_code == 1 and "may not run_retention" in out.stderr
