#!/usr/bin/python3
"""Prints evert's view figures next to the PostgreSQL baseline measured in
the same `make bench` run, as ratios (docs/BENCHMARKS.md).

usage: compare.py VIEW_BENCH_JSON PG_BASELINE_JSON
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    evert = json.load(open(sys.argv[1]))
    pg = json.load(open(sys.argv[2]))["results"]

    def fig(d):
        return f"{d['median']:,.0f} (min {d['min']:,.0f}, max {d['max']:,.0f})"

    one = evert.get("backfill_one_thread", evert["backfill"])  # results from before it was measured apart
    rows = [
        ("evert backfill, the view's thread alone (one core), events/s", fig(one), ""),
        ("evert backfill, decoded ahead on every core, events/s", fig(evert["backfill"]), ""),
        ("PostgreSQL REFRESH MATERIALIZED VIEW, rows/s", fig(pg["refresh"]),
         f"evert / PostgreSQL = {one['median'] / pg['refresh']['median']:.2f}x on one core, "
         f"{evert['backfill']['median'] / pg['refresh']['median']:.2f}x decoded ahead"),
        ("evert steady-state maintenance while appending, events/s", fig(evert["steady"]), ""),
        ("PostgreSQL AFTER INSERT trigger, events/s", fig(pg["trigger"]),
         f"evert / PostgreSQL = {evert['steady']['median'] / pg['trigger']['median']:.1f}x"),
        ("PostgreSQL plain INSERT (no trigger), events/s", fig(pg["plain_insert"]), ""),
        ("evert freshness p50 / p99, ms",
         f"{evert['freshness_p50_ms']['median']:.3f} / {evert['freshness_p99_ms']['median']:.3f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:<40} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
