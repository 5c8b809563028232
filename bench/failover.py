"""Leader failover: two ``lockgate run --role core`` processes on one PostgreSQL and a private
Mosquitto; in each trial the leader is killed with SIGKILL in the middle of a flood of
requests, and the time from the kill to the first request answered by the new leader is
measured (target: at most 10 s with the default ``[leadership]`` settings, lease 5 s, renew
1 s). The killed process is started again and stands by for the next trial, so the trials
alternate between the two instances.

Counted per trial as in bench/reliability.py: lost, doubled, unanswered, mismatched (the
central system never resends: what the killed leader held unacknowledged reaches the new
leader through the gateway's persistent session). The last line of output is one JSON object.

    python bench/failover.py [--trials 3] [--requests 800] [--lease-s 5] [--renew-s 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.demo.broker import PrivateMosquitto  # noqa: E402
from tests.gateway.leadership.cluster import (  # noqa: E402
    Central,
    CoreProcess,
    flood_with_failure,
    wait_for,
)
from tests.trial_load import prepare  # noqa: E402

PG_ADMIN = os.environ.get(
    "LOCKGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TARGET_S = 10.0


def log(message: str) -> None:
    print(f"[failover] {message}", file=sys.stderr, flush=True)


async def run(
    args: argparse.Namespace, url: str, folder: Path, broker: PrivateMosquitto
) -> dict[str, Any]:
    cores = [
        CoreProcess(
            folder, name, url, broker.host, broker.port, lease_s=args.lease_s, renew_s=args.renew_s
        )
        for name in ("core-a", "core-b")
    ]
    central = Central(broker.host, broker.port)
    stop = asyncio.Event()
    runner = asyncio.create_task(central.run(stop), name="central")
    results: list[dict[str, Any]] = []
    try:
        await asyncio.wait_for(central.online.wait(), 10)
        leader, standby = cores
        leader.start()
        await wait_for(
            lambda: (
                leader.instance() is not None and central.online_instance() == leader.instance()
            ),
            60,
            "first leader",
        )
        standby.start()
        await wait_for(lambda: standby.logged("standing by") > 0, 60, "standby")
        for i in range(args.trials):
            old = leader.instance()
            assert old is not None
            outcome = await flood_with_failure(
                url, central, args.requests, leader.kill, old_leader=old, settle_s=60
            )
            result = outcome.as_dict()
            log(f"trial {i + 1}: {result}")
            results.append(result)
            # The killed one comes back as the standby of the next trial.
            leader, standby = standby, leader
            standby.proc = None
            standby.log_path.write_text("")
            standby.start()
            await wait_for(lambda s=standby: s.logged("standing by") > 0, 60, "standby again")
    finally:
        stop.set()
        await runner
        for core in cores:
            core.stop()
    takeovers = [r["takeover_s"] for r in results if r["takeover_s"] is not None]
    summary: dict[str, Any] = {
        "trials": len(results),
        "requests_per_trial": args.requests,
        "lease_s": args.lease_s,
        "renew_s": args.renew_s,
        "takeover_s": takeovers,
        "takeover_s_median": round(statistics.median(takeovers), 3) if takeovers else None,
        "takeover_s_max": max(takeovers) if takeovers else None,
        "online_s_max": max(
            (r["online_s"] for r in results if r["online_s"] is not None), default=None
        ),
        "target_s": TARGET_S,
    }
    for key in ("lost", "doubled", "unanswered", "mismatched"):
        summary[key] = sum(r[key] for r in results)
    summary["ok"] = (
        len(takeovers) == len(results)
        and all(t <= TARGET_S for t in takeovers)
        and all(summary[k] == 0 for k in ("lost", "doubled", "unanswered", "mismatched"))
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--requests", type=int, default=800, help="requests per trial")
    parser.add_argument("--lease-s", type=float, default=5.0)
    parser.add_argument("--renew-s", type=float, default=1.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lockgate-failover-"))
    name = f"lockgate_failover_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    broker = PrivateMosquitto()
    try:
        prepare(url)
        broker.start()
        summary = asyncio.run(run(args, url, folder, broker))
    finally:
        broker.cleanup()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
