#!/usr/bin/python3
"""evert's view backfill against PostgreSQL's REFRESH MATERIALIZED VIEW,
taken in turns.

The machine's speed drifts by up to 2x within minutes, and `make bench`
measures evert (view_bench) and PostgreSQL (pg_baseline.py) minutes apart,
so that drift lands in their ratio. Here one private PostgreSQL server
(pg_baseline.Server) holds the same 10,000,000 events, and each round times
one REFRESH MATERIALIZED VIEW and then one evert backfill of the same GROUP
BY (`view_bench --backfill-only --runs 1`: the view's thread alone, then
decoded ahead), so each pair ran at nearly the same moment. Prints each
round and the medians; --json writes them.

  backfill_vs_refresh.py [--rounds N] [--events N] [--view-bench PATH] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_baseline  # noqa: E402  (the directory above is where it lives)

ROUND_TIMEOUT_S = 600


def evert_backfill(view_bench, events):
    """One view_bench backfill: (events/s on the view's thread alone, events/s decoded ahead)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([view_bench, "--backfill-only", "--runs", "1", "--events", str(events),
                        "--json", out.name], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=ROUND_TIMEOUT_S)
        figures = json.load(open(out.name))
    return figures["backfill_one_thread"]["median"], figures["backfill"]["median"]


def refresh(conn, events):
    pg_baseline.checkpoint(conn)
    seconds = pg_baseline.timed(conn, "REFRESH MATERIALIZED VIEW agg_mv")
    pg_baseline.verify_agg(conn, "agg_mv", events)
    return events / seconds


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def run(server, args, log):
    conn = server.connect()
    log("loading %d events into PostgreSQL (not timed)" % args.events)
    pg_baseline.load_events(conn, args.events)
    pg_baseline.execute(conn, "CREATE MATERIALIZED VIEW agg_mv AS %s WITH NO DATA" % pg_baseline.AGGREGATE_SQL)
    conn.commit()
    rounds = {"refresh": [], "evert_one_core": [], "evert_decoded_ahead": []}
    for r in range(args.rounds):
        pg_rate = refresh(conn, args.events)
        one, ahead = evert_backfill(args.view_bench, args.events)
        rounds["refresh"].append(pg_rate)
        rounds["evert_one_core"].append(one)
        rounds["evert_decoded_ahead"].append(ahead)
        log("round %d: REFRESH %.0f rows/s; evert %.0f events/s on one core (%.2fx), %.0f decoded ahead (%.2fx)"
            % (r + 1, pg_rate, one, one / pg_rate, ahead, ahead / pg_rate))
    conn.close()
    results = {name: summary(values) for name, values in rounds.items()}
    for name in ("evert_one_core", "evert_decoded_ahead"):
        pair = [e / p for e, p in zip(rounds[name], rounds["refresh"])]
        results[name]["ratio_to_refresh"] = summary(pair)
    return {"events": args.events, "rounds": args.rounds, "aggregate": pg_baseline.AGGREGATE_SQL,
            "results": results}


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--view-bench", default=os.path.join(here, "..", "..", "build", "bench", "view_bench"))
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--pg-bin")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.events < 1:
        p.error("--rounds and --events must be at least 1")
    log = lambda line: print(line, flush=True)
    report, code = pg_baseline.with_server("backfill_vs_refresh", args.pg_bin, None,
                                           lambda server: run(server, args, log), log,
                                           errors=(subprocess.SubprocessError, OSError, ValueError))
    if code:
        return code
    log("")
    log("%-22s %14s %14s %14s  %s" % ("result", "median", "min", "max", "median of the rounds' ratios"))
    for name, r in report["results"].items():
        ratio = r.get("ratio_to_refresh")
        log("%-22s %14.0f %14.0f %14.0f  %s" % (name, r["median"], r["min"], r["max"],
                                               "%.2fx" % ratio["median"] if ratio else ""))
    if args.json:
        pg_baseline.write_json(args.json, report, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
