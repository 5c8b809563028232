"""Run every benchmark (bounded) and print one table: each figure, its target, met or not.

Each benchmark prints one JSON object as its last line; this script runs them one after the
other, keeps that line (in ``--results``, one ``<name>.json`` each) and judges it against the
targets below (issue 14 and the drivers' own). ``--only NAME`` runs some of them;
``--table-only`` prints the table of the results already in ``--results`` without running.

    python bench/summary.py [--results DIR] [--only NAME ...] [--table-only]

Figures are measured on whatever machine runs this: on a shared one, wall-clock figures move
with the other processes; the ingest ratios compare with a raw MQTT echo measured in the same
run, and the rules bench judges CPU time (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Result = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One figure of a result and its target."""

    label: str
    figure: Callable[[Result], Any]
    target: str
    met: Callable[[Result], bool]


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    timeout_s: float
    checks: tuple[Check, ...]


def _get(*path: str) -> Callable[[Result], Any]:
    def figure(r: Result) -> Any:
        value: Any = r
        for key in path:
            value = value[key]
        return value

    return figure


def _at_most(limit: float, *path: str) -> Callable[[Result], bool]:
    return lambda r: _get(*path)(r) is not None and float(_get(*path)(r)) <= limit


def _at_least(limit: float, *path: str) -> Callable[[Result], bool]:
    return lambda r: float(_get(*path)(r)) >= limit


def _ingest(db: str) -> tuple[Bench, Bench]:
    ratio = {"sqlite": 0.6, "postgresql": 0.5}[db]
    p99 = {"sqlite": 20.0, "postgresql": 30.0}[db]
    flood = Bench(
        f"ingest-{db}",
        ("bench/ingest.py", "--db", db),
        900,
        (
            Check(
                "accepted/s ÷ raw echo/s", _get("ratio"), f">= {ratio}", _at_least(ratio, "ratio")
            ),
            Check(
                "accepted/s (raw/s)",
                lambda r: f"{r['accepted_per_s']:.0f} ({r['raw_per_s']:.0f})",
                "",
                lambda r: True,
            ),
            Check(
                "gateway CPU ms per request", _get("gateway_cpu_ms_per_request"), "", lambda r: True
            ),
            Check("errors", _get("errors"), "0", lambda r: r["errors"] == 0),
        ),
    )
    rate = Bench(
        f"ingest-{db}-100rps",
        ("bench/ingest.py", "--db", db, "--rate", "100", "--count", "3000"),
        600,
        (
            Check(
                "p99 request→response ms at 100/s",
                _get("latency_p99_ms"),
                f"<= {p99:g}",
                _at_most(p99, "latency_p99_ms"),
            ),
            Check(
                "p50 ms (raw echo p99 ms)",
                lambda r: f"{r['latency_p50_ms']} ({r['raw_latency_p99_ms']})",
                "",
                lambda r: True,
            ),
        ),
    )
    return flood, rate


BENCHES: tuple[Bench, ...] = (
    *_ingest("sqlite"),
    *_ingest("postgresql"),
    Bench(
        "rules",
        ("bench/rules.py",),
        900,
        (
            Check(
                "full derivation s at 100k, CPU (wall)",
                lambda r: f"{r['full_cpu_s']} ({r['full_s']})",
                "<= 4",
                _at_most(4.0, "full_cpu_s"),
            ),
            Check(
                "incremental p99 ms, CPU (wall)",
                lambda r: f"{r['incremental_cpu_p99_ms']} ({r['incremental_p99_ms']})",
                "<= 2",
                _at_most(2.0, "incremental_cpu_p99_ms"),
            ),
            Check("peak RSS MB", _get("peak_rss_mb"), "<= 400", _at_most(400.0, "peak_rss_mb")),
            Check(
                "incremental p50 100k ÷ 10k, CPU",
                _get("cpu_p50_ratio_100000_vs_10000"),
                "<= 1.5",
                _at_most(1.5, "cpu_p50_ratio_100000_vs_10000"),
            ),
        ),
    ),
    Bench(
        "startup",
        ("bench/startup.py",),
        900,
        (
            Check(
                "lockgate run → first response s (100k)",
                _get("ready_s"),
                "<= 10",
                _at_most(10.0, "ready_s"),
            ),
        ),
    ),
    Bench(
        "station",
        ("bench/station.py",),
        600,
        (
            Check("wire_ratio", _get("wire_ratio"), "<= 1.10", _at_most(1.10, "wire_ratio")),
            Check(
                "delta_bytes_ratio",
                _get("delta_bytes_ratio"),
                "<= 0.02",
                _at_most(0.02, "delta_bytes_ratio"),
            ),
        ),
    ),
    Bench(
        "controller",
        ("bench/controller.py",),
        600,
        (
            Check(
                "Modbus requests of a full sync",
                _get("drivers", "modbus", "requests"),
                "<= ceil(regs/123)+5",
                lambda r: (
                    r["drivers"]["modbus"]["requests"] <= r["drivers"]["modbus"]["requests_target"]
                ),
            ),
            *(
                check
                for driver in ("modbus", "uhppote", "osdp")
                for check in (
                    Check(
                        f"{driver} revocation p99 ms",
                        _get("drivers", driver, "revocation_p99_ms"),
                        "<= 250",
                        _at_most(250.0, "drivers", driver, "revocation_p99_ms"),
                    ),
                    Check(
                        f"{driver} gateway revocation p99 ms",
                        _get("drivers", driver, "gateway_revocation_p99_ms"),
                        "<= 250",
                        _at_most(250.0, "drivers", driver, "gateway_revocation_p99_ms"),
                    ),
                )
            ),
        ),
    ),
    Bench(
        "osdp",
        ("bench/osdp.py",),
        600,
        (
            Check(
                "read→LED p99 ms",
                _get("read_to_led_p99_ms"),
                "<= 100",
                lambda r: bool(r["within_target"]),
            ),
        ),
    ),
    Bench(
        "uhppote",
        ("bench/uhppote.py",),
        600,
        (
            Check(
                "revocation p99 ms",
                _get("revocation_p99_ms"),
                "<= 250",
                _at_most(250.0, "revocation_p99_ms"),
            ),
        ),
    ),
    Bench(
        "sites",
        ("bench/sites.py", "--sites", "20", "--revocations", "20"),
        900,
        (
            Check(
                "ID06 block → 100 controllers verified, p99 ms (20 sites)",
                _get("revocation_p99_ms"),
                "<= 1000",
                _at_most(1000.0, "revocation_p99_ms"),
            ),
            Check(
                "idle core CPU % per site", _get("idle_core_cpu_pct_per_site"), "", lambda r: True
            ),
        ),
    ),
    Bench(
        "failover",
        ("bench/failover.py", "--trials", "2"),
        900,
        (
            Check(
                "kill -9 of the leader → first answer s, max",
                _get("takeover_s_max"),
                "<= 10",
                lambda r: bool(r["ok"]) and r["takeover_s_max"] <= 10.0,
            ),
        ),
    ),
    Bench(
        "reliability",
        ("bench/reliability.py", "--trials", "1", "--stream", "300"),
        1500,
        (
            Check(
                "lost / doubled / stalled / mismatched",
                lambda r: " / ".join(
                    str(sum(r[k][x] for k in r if isinstance(r[k], dict)))
                    for x in ("lost", "doubled", "stalled", "mismatched")
                ),
                "0 / 0 / 0 / 0",
                lambda r: bool(r["ok"]),
            ),
        ),
    ),
)


def last_json(text: str) -> Result | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def run(bench: Bench, results: Path) -> Result | None:
    print(f"== {bench.name}: {' '.join(bench.args)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, *bench.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            timeout=bench.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"   {bench.name}: no result within {bench.timeout_s:.0f} s", file=sys.stderr)
        return None
    result = last_json(done.stdout)
    took = time.monotonic() - started
    if result is None or done.returncode != 0:
        print(f"   {bench.name}: failed (exit {done.returncode})", file=sys.stderr)
        return None
    print(f"   {bench.name}: {took:.0f} s", file=sys.stderr)
    (results / f"{bench.name}.json").write_text(json.dumps(result) + "\n")
    return result


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    head = ("bench", "figure", "measured", "target", "met")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def judge(bench: Bench, result: Result | None) -> list[tuple[str, str, str, str, str]]:
    if result is None:
        return [(bench.name, "(no result)", "-", "-", "no")]
    rows = []
    for check in bench.checks:
        try:
            figure, met = str(check.figure(result)), check.met(result)
        except (KeyError, TypeError, ValueError):
            figure, met = "?", False
        rows.append(
            (
                bench.name,
                check.label,
                figure,
                check.target,
                ("yes" if met else "NO") if check.target else "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", nargs="*", default=None, help="names of benchmarks to run")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    names = {b.name for b in BENCHES}
    for name in args.only or ():
        if name not in names:
            parser.error(f"--only: unknown benchmark {name!r} (one of {', '.join(sorted(names))})")
    args.results.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, str, str]] = []
    summary: dict[str, Any] = {}
    for bench in BENCHES:
        stored = args.results / f"{bench.name}.json"
        if args.table_only or (args.only is not None and bench.name not in args.only):
            result = last_json(stored.read_text()) if stored.exists() else None
        else:
            result = run(bench, args.results)
        judged = judge(bench, result)
        rows += judged
        summary[bench.name] = all(r[4] in ("yes", "") for r in judged) and result is not None
    print(table(rows))
    print(json.dumps({"met": summary, "all_met": all(summary.values())}))


if __name__ == "__main__":
    main()
