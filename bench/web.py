"""Benchmark of the web console: p95 of the dashboard, a credential page and a searched list
with N credentials loaded (default 100000; the site of bench/rules.py, every key with a
pending sync job), served in-process (ASGI, no network), signed in. Target: p95 <= 150 ms
each. ``*_first_ms`` is the first request of each page, which builds the search index and the
dashboard's expiring list (rebuilt when the facts change; the expiring list also every ten
minutes).

Usage: ``python bench/web.py [--size N] [--rounds K]``. Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules import build_site

from gateway.auth import manage
from gateway.auth.passwords import hash_password
from gateway.compose import build_gateway
from gateway.config import Settings
from gateway.domain.timeutil import utcnow
from gateway.store import fact_repository, migrate
from gateway.store.database import Database
from gateway.web import create_app

TARGET_MS = 150.0
PASSWORD = "bench password 1"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] * 1000 if len(samples) > 1 else samples[0]


async def run(n: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(url)
        facts, _ = build_site(n)
        db = Database(url)
        with db.session() as s:
            fact_repository.put_many(s, facts)
            manage.bootstrap(s, name="bench", at=utcnow(), password_hash=hash_password(PASSWORD))
        db.dispose()
        settings = Settings.model_validate({"database": {"url": url}, "mqtt": {"enabled": False}})
        gateway = build_gateway(settings)
        started = time.perf_counter()
        await gateway.start()
        load_s = time.perf_counter() - started
        try:
            app = create_app(gateway)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                r = await c.post("/login", data={"operator": "bench", "password": PASSWORD})
                assert r.status_code == 303, r.text
                pages = {
                    "dashboard": "/",
                    "credential": f"/credentials/{100_000_000 + n // 2}",
                    "search": f"/credentials?q=last{n // 3}",
                }
                result: dict[str, object] = {"credentials": n, "load_s": round(load_s, 1)}
                for name, path in pages.items():
                    started = time.perf_counter()
                    r = await c.get(path)  # the first one builds what later ones reuse
                    result[f"{name}_first_ms"] = round((time.perf_counter() - started) * 1000, 1)
                    samples = []
                    for _ in range(rounds):
                        t = time.perf_counter()
                        r = await c.get(path)
                        samples.append(time.perf_counter() - t)
                        assert r.status_code == 200, (path, r.status_code)
                    result[f"{name}_p95_ms"] = round(p95(samples), 1)
                result["target_p95_ms"] = TARGET_MS
                result["ok"] = all(
                    float(v) <= TARGET_MS  # type: ignore[arg-type]
                    for k, v in result.items()
                    if k.endswith("_p95_ms")
                )
                return result
        finally:
            await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="credentials loaded")
    parser.add_argument("--rounds", type=int, default=40, help="requests per page")
    args = parser.parse_args()
    result = asyncio.run(run(args.size, args.rounds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
