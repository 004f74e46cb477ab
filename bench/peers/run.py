#!/usr/bin/python3
"""Side-by-side benchmark: evert against Redis Streams, NATS JetStream and
PostgreSQL 15, next to the disk's and loopback's own limits.

`make bench-peers` runs this (PEERS_ARGS=--quick for a smoke run). Every
server is started here, on 127.0.0.1 and a free port, with its data in one
temporary directory; every server is stopped by its PID, also on error,
Ctrl-C and SIGTERM; the directory is removed at the end. Results go to
bench/results/peers.{md,csv} and bench/results/peers_*.png.

Workloads (docs/BENCHMARKS.md, "Side by side", says what each one means):
  append     100-byte events as fast as possible, not durable / durable per batch
  read       all appended events back from the start
  e2e        produce -> consume latency at half of the system's own peak
  aggregate  per-key SUM/COUNT maintained while appending (durable), then
             100,000 point reads of random keys
  backfill   the aggregate built from 10,000,000 existing events
  limits     fio sequential write with and without fdatasync; iperf3 on loopback
"""

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "views"))

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
STRACE_SECONDS = 2

# Sizes of the default run and of --quick.
FULL = dict(runs=3, append_events={"evert": 5_000_000, "redis": 2_000_000, "nats": 1_000_000},
            e2e_seconds=5, agg_events=1_000_000, reads=100_000, backfill_events=10_000_000,
            fio_seconds=3, iperf_seconds=3, big_records=100_000)
QUICK = dict(runs=1, append_events={"evert": 500_000, "redis": 300_000, "nats": 200_000},
             e2e_seconds=1, agg_events=50_000, reads=10_000, backfill_events=300_000,
             fio_seconds=1, iperf_seconds=1, big_records=20_000)

REDIS_BATCH = 1000        # XADDs per pipeline (and per MULTI in the aggregate workload)
NATS_WINDOW = 2000        # unacknowledged async publishes
EVERT_BATCH_BYTES = 1_000_000  # librdkafka batch.size of `evert bench` (its default)
FIO_BLOCKS = ["100k", "1m"]    # a Redis pipeline of 1000 events; a full librdkafka batch
# Events appended while strace counts the server's fsyncs (an untimed extra
# run, long enough to cover the 2 s window at each system's speed).
PROBE_EVENTS = {"evert": 8_000_000, "redis": 1_500_000, "nats": 600_000}


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited at start-up (status %s)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s not accepting connections on %d" % (what, port))


# --- processes we own -----------------------------------------------------------

class Servers:
    """Every server this run started, by PID; stop_all() is safe at any time."""

    def __init__(self):
        self.procs = {}

    def start(self, name, cmd, log_path, **kw):
        out = open(log_path, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, **kw)
        out.close()
        self.procs[proc.pid] = (name, proc)
        return proc

    def stop(self, proc):
        if proc is None or proc.pid not in self.procs:
            return
        del self.procs[proc.pid]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for _, proc in list(self.procs.values()):
            self.stop(proc)


SERVERS = Servers()


def run_tool(cmd, timeout=600, **kw):
    """Runs a load generator; returns its 'result k=v ...' line as a dict."""
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=timeout, **kw)
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (" ".join(cmd), res.returncode,
                                                       res.stdout[-2000:], res.stderr[-2000:]))
    for line in res.stdout.splitlines():
        if line.startswith("result "):
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return res.stdout


def strace_fsyncs(pid, seconds):
    """Counts fsync/fdatasync calls of pid and its threads over `seconds`."""
    proc = subprocess.Popen(["strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync", "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    counts = {"fsync": 0, "fdatasync": 0}
    for line in err.splitlines():
        parts = line.split()
        if parts and parts[-1] in counts:
            counts[parts[-1]] = int(parts[3]) if len(parts) >= 5 else int(parts[-2])
    return counts


# --- the systems --------------------------------------------------------------

class Evert:
    def __init__(self, ctx, flush="interval:1000"):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="evert-", dir=ctx.tmp)
        self.log_path = os.path.join(self.dir, "server.log")
        cmd = [ctx.evert, "serve", "--data-dir", os.path.join(self.dir, "data"), "--host", "127.0.0.1",
               "--kafka-port", "0", "--pg-port", "0", "--http-port", "0", "--flush", flush]
        self.proc = SERVERS.start("evert", cmd, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        self.kafka = self.http = None
        while time.monotonic() < deadline and self.http is None:
            if self.proc.poll() is not None:
                raise RuntimeError("evert exited at start-up: " + open(self.log_path).read()[-2000:])
            m = re.search(r"listening kafka=127\.0\.0\.1:(\d+) http=127\.0\.0\.1:(\d+)",
                          open(self.log_path).read())
            if m:
                self.kafka, self.http = int(m.group(1)), int(m.group(2))
            else:
                time.sleep(0.05)
        if self.http is None:
            raise RuntimeError("evert did not report its ports")
        wait_port(self.http, self.proc, "evert")
        self.bootstrap = "127.0.0.1:%d" % self.kafka

    def bench(self, *args, timeout=600):
        out = run_tool([self.ctx.evert, "bench"] + list(args) + ["--bootstrap-server", self.bootstrap],
                       timeout=timeout)
        # "produce: 5000000 records, 100 B, 1812345.6 records/s, 181.2 MB/s, latency ms p50 ..."
        m = re.search(r"([\d.]+) records/s, ([\d.]+) MB/s", out)
        r = {"rate": float(m.group(1)), "mb_per_s": float(m.group(2))}
        for q in ("p50", "p99", "p999", "max"):
            mq = re.search(r"\b%s ([\d.]+)" % q, out)
            if mq:
                r[q + "_ms"] = float(mq.group(1))
        return r

    def sql(self, text):
        req = urllib.request.Request("http://127.0.0.1:%d/v1/sql" % self.http,
                                     data=json.dumps({"sql": text}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)

    def stop(self):
        SERVERS.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self, ctx, fsync):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=ctx.tmp)
        self.port = free_port()
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
               "--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--daemonize", "no",
               "--protected-mode", "yes", "--logfile", os.path.join(self.dir, "server.log")]
        self.proc = SERVERS.start("redis", cmd, os.path.join(self.dir, "stdout.log"))
        wait_port(self.port, self.proc, "redis-server")

    def set_fsync(self, fsync):
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "CONFIG", "SET",
                        "appendfsync", fsync], check=True, stdout=subprocess.DEVNULL)

    def tool(self, *args):
        return run_tool([self.ctx.tool("redis_bench"), args[0], "--port", str(self.port)] + list(args[1:]))

    def stop(self):
        SERVERS.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class Nats:
    def __init__(self, ctx):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="nats-", dir=ctx.tmp)
        self.port = free_port()
        cmd = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.dir]
        self.proc = SERVERS.start("nats", cmd, os.path.join(self.dir, "server.log"))
        wait_port(self.port, self.proc, "nats-server")
        time.sleep(0.3)  # JetStream comes up just after the listener

    def tool(self, *args):
        return run_tool([self.ctx.tool("nats_bench"), args[0], "--port", str(self.port)] + list(args[1:]))

    def stop(self):
        SERVERS.stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- results ------------------------------------------------------------------

class Results:
    """figures[(workload, mode, system, metric)] = [one value per run]"""

    def __init__(self):
        self.figures = {}
        self.units = {}
        self.notes = []

    def add(self, workload, mode, system, metric, value, unit):
        self.figures.setdefault((workload, mode, system, metric), []).append(value)
        self.units[(workload, mode, system, metric)] = unit

    def add_result(self, workload, mode, system, r, metrics):
        for metric, unit in metrics:
            if metric in r:
                self.add(workload, mode, system, metric, r[metric], unit)

    def median(self, key):
        v = self.figures.get(key)
        return statistics.median(v) if v else None


class Ctx:
    def __init__(self, args, sizes):
        self.args = args
        self.sizes = sizes
        self.build = os.path.abspath(args.build_dir)
        self.evert = os.path.join(self.build, "evert")
        self.tmp = tempfile.mkdtemp(prefix="evert-peers-", dir=args.dir)
        os.chmod(self.tmp, 0o755)  # PostgreSQL runs as the postgres user under root
        self.results = Results()
        self.fsync_checks = []

    def tool(self, name):
        return os.path.join(self.build, "bench", name)


THROUGHPUT = [("rate", "events/s"), ("mb_per_s", "MB/s")]
LATENCY = [("p50_ms", "ms"), ("p99_ms", "ms"), ("p999_ms", "ms"), ("rate", "events/s")]


def fsync_probe(ctx, system, mode, pid, start_load):
    """Runs start_load() in the background and counts the server's fsyncs meanwhile (untimed)."""
    load = start_load()
    time.sleep(0.5)
    counts = strace_fsyncs(pid, STRACE_SECONDS)
    load.wait(timeout=300)
    ctx.fsync_checks.append({"system": system, "mode": mode, "seconds": STRACE_SECONDS, **counts})
    log("  fsync check %s %s: %s in %d s" % (system, mode, counts, STRACE_SECONDS))


def bg(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- workloads 1-3 --------------------------------------------------------------

def append_read_evert(ctx, run):
    n = ctx.sizes["append_events"]["evert"]
    e = Evert(ctx)
    try:
        r = e.bench("produce", "--topic", "a1", "--records", str(n), "--record-size", "100", "--acks", "1")
        ctx.results.add_result("append", "not durable", "evert", r, THROUGHPUT)
        log("  evert append acks=1: %.0f/s" % r["rate"])
        r = e.bench("consume", "--topic", "a1", "--records", str(n))
        ctx.results.add_result("read", "from start", "evert", r, THROUGHPUT)
        log("  evert read: %.0f/s" % r["rate"])
        r = e.bench("produce", "--topic", "a2", "--records", str(n), "--record-size", "100", "--acks", "all")
        ctx.results.add_result("append", "durable", "evert", r, THROUGHPUT)
        log("  evert append acks=all: %.0f/s" % r["rate"])
        # Large records: what acks=all does with the disk when the client is not the limit.
        big = ctx.sizes["big_records"]
        r = e.bench("produce", "--topic", "a3", "--records", str(big), "--record-size", "10000", "--acks", "all")
        ctx.results.add_result("append", "durable, 10 KB records", "evert", r, THROUGHPUT)
        log("  evert append acks=all 10 KB records: %.0f MB/s" % r["mb_per_s"])
        # Pre-built 100 KiB batches without librdkafka (evert bench produce --raw): the broker
        # and the disk at fio's block size, with Kafka's default 5 requests in flight and with 1
        # (each batch then waits for its own fdatasync, as each fio write does).
        for inflight in ("5", "1"):
            r = e.bench("produce", "--raw", "--topic", "r" + inflight, "--records", str(n), "--record-size", "100",
                        "--acks", "all", "--batch-size", "102400", "--in-flight", inflight)
            mode = "durable, pre-built 100 KiB batches, %s in flight" % inflight
            ctx.results.add_result("append", mode, "evert", r, THROUGHPUT)
            log("  evert append acks=all --raw, %s in flight: %.0f MB/s" % (inflight, r["mb_per_s"]))
        if run == 0:
            for acks, mode in (("1", "not durable"), ("all", "durable")):
                fsync_probe(ctx, "evert", mode + " (acks=%s, --flush interval:1000)" % acks, e.proc.pid,
                            lambda: bg([ctx.evert, "bench", "produce", "--bootstrap-server", e.bootstrap,
                                        "--topic", "p" + acks, "--records", str(PROBE_EVENTS["evert"]),
                                        "--acks", acks]))
    finally:
        e.stop()


def append_read_redis(ctx, run):
    n = ctx.sizes["append_events"]["redis"]
    rd = Redis(ctx, "everysec")
    try:
        r = rd.tool("append", "--events", str(n), "--batch", str(REDIS_BATCH), "--stream", "a1")
        ctx.results.add_result("append", "not durable", "redis", r, THROUGHPUT)
        log("  redis append everysec: %.0f/s" % r["rate"])
        r = rd.tool("read", "--events", str(n), "--stream", "a1")
        ctx.results.add_result("read", "from start", "redis", r, THROUGHPUT)
        log("  redis read: %.0f/s" % r["rate"])
        rd.set_fsync("always")
        r = rd.tool("append", "--events", str(n), "--batch", str(REDIS_BATCH), "--stream", "a2")
        ctx.results.add_result("append", "durable", "redis", r, THROUGHPUT)
        log("  redis append always: %.0f/s" % r["rate"])
        if run == 0:
            for fsync, mode in (("everysec", "not durable"), ("always", "durable")):
                rd.set_fsync(fsync)
                fsync_probe(ctx, "redis", mode + " (appendfsync %s)" % fsync, rd.proc.pid,
                            lambda: bg([ctx.tool("redis_bench"), "append", "--port", str(rd.port),
                                        "--events", str(PROBE_EVENTS["redis"]), "--stream", "p" + fsync]))
    finally:
        rd.stop()


def append_read_nats(ctx, run):
    n = ctx.sizes["append_events"]["nats"]
    na = Nats(ctx)
    try:
        r = na.tool("append", "--events", str(n), "--window", str(NATS_WINDOW), "--stream", "a1")
        ctx.results.add_result("append", "nats file storage", "nats", r, THROUGHPUT)
        log("  nats append: %.0f/s" % r["rate"])
        r = na.tool("read", "--events", str(n), "--stream", "a1")
        ctx.results.add_result("read", "from start", "nats", r, THROUGHPUT)
        log("  nats read: %.0f/s" % r["rate"])
        if run == 0:
            fsync_probe(ctx, "nats", "file storage (the only mode)", na.proc.pid,
                        lambda: bg([ctx.tool("nats_bench"), "append", "--port", str(na.port),
                                    "--events", str(PROBE_EVENTS["nats"]), "--stream", "p1"]))
    finally:
        na.stop()


def e2e_all(ctx, run):
    res = ctx.results
    secs = ctx.sizes["e2e_seconds"]
    for system in ("evert", "redis", "nats"):
        mode = "nats file storage" if system == "nats" else "not durable"
        peak = res.median(("append", mode, system, "rate"))
        if not peak:
            continue
        rate = int(peak / 2)
        events = max(1000, rate * secs)
        if system == "evert":
            e = Evert(ctx)
            try:
                r = e.bench("e2e", "--topic", "e%d" % run, "--records", str(events), "--record-size", "100",
                            "--rate", str(rate))
            finally:
                e.stop()
        elif system == "redis":
            rd = Redis(ctx, "everysec")
            try:
                r = rd.tool("e2e", "--events", str(events), "--rate", str(rate), "--stream", "e%d" % run)
            finally:
                rd.stop()
        else:
            na = Nats(ctx)
            try:
                r = na.tool("e2e", "--events", str(events), "--rate", str(rate), "--stream", "e%d" % run)
            finally:
                na.stop()
        r["target_rate"] = rate
        res.add_result("e2e", "half of peak", system, r, LATENCY + [("target_rate", "events/s")])
        log("  %s e2e at %d/s: p50 %.3f p99 %.3f ms" % (system, rate, r["p50_ms"], r["p99_ms"]))
    # evert again at each peer's rate: latency compared at equal load.
    for peer in ("redis", "nats"):
        rate = res.median(("e2e", "half of peak", peer, "target_rate"))
        if not rate:
            continue
        rate = int(rate)
        e = Evert(ctx)
        try:
            r = e.bench("e2e", "--topic", "e%s%d" % (peer, run), "--records", str(max(1000, rate * secs)),
                        "--record-size", "100", "--rate", str(rate))
        finally:
            e.stop()
        res.add_result("e2e", "at %s's rate" % peer, "evert", r, LATENCY)
        log("  evert e2e at %s's rate %d/s: p50 %.3f p99 %.3f ms" % (peer, rate, r["p50_ms"], r["p99_ms"]))


# --- workload 4: the aggregate -------------------------------------------------

EVERT_TABLE = ("CREATE TABLE events (id bigint, customer text, product bigint, qty int, ts bigint) "
               "WITH (topic = 'events', partitions = 1)")
EVERT_VIEW = ("CREATE MATERIALIZED VIEW totals AS SELECT customer, count(*) AS n, sum(qty) AS qty "
              "FROM events GROUP BY customer")
READS = [("rate", "reads/s"), ("p50_ms", "ms"), ("p99_ms", "ms")]


def agg_evert(ctx, run):
    n, reads = ctx.sizes["agg_events"], ctx.sizes["reads"]
    e = Evert(ctx)
    try:
        e.sql(EVERT_TABLE)
        e.sql(EVERT_VIEW)
        r = run_tool([ctx.tool("agg_bench"), "evert-append", "--bootstrap", e.bootstrap, "--http-port",
                      str(e.http), "--events", str(n), "--acks", "all"])
        ctx.results.add_result("aggregate", "maintain, durable", "evert", r,
                               [("rate", "events/s"), ("view_lag_after_ack_ms", "ms")])
        log("  evert aggregate (acks=all, view caught up): %.0f/s (view %.0f ms behind the last ack)"
            % (r["rate"], r["view_lag_after_ack_ms"]))
        r = run_tool([ctx.tool("agg_bench"), "http-reads", "--http-port", str(e.http), "--reads", str(reads),
                      "--events", str(n), "--seed", str(run + 1)])
        ctx.results.add_result("aggregate", "point reads", "evert", r, READS)
        log("  evert point reads (HTTP): %.0f/s p50 %.3f ms" % (r["rate"], r["p50_ms"]))
    finally:
        e.stop()


def agg_redis(ctx, run):
    n, reads = ctx.sizes["agg_events"], ctx.sizes["reads"]
    rd = Redis(ctx, "always")
    try:
        r = rd.tool("append-agg", "--events", str(n), "--batch", str(REDIS_BATCH))
        ctx.results.add_result("aggregate", "maintain, durable", "redis", r, [("rate", "events/s")])
        log("  redis aggregate (always, MULTI per %d): %.0f/s" % (REDIS_BATCH, r["rate"]))
        r = rd.tool("point-reads", "--reads", str(reads), "--events", str(n), "--seed", str(run + 1))
        ctx.results.add_result("aggregate", "point reads", "redis", r, READS)
        log("  redis point reads: %.0f/s p50 %.3f ms" % (r["rate"], r["p50_ms"]))
    finally:
        rd.stop()


def postgres_all(ctx):
    """Trigger maintenance + point reads (per run), then REFRESH / CREATE INDEX, on one private server."""
    import pg_baseline as pg  # bench/views/pg_baseline.py: the server, the events, the checks
    runs, n, reads = ctx.sizes["runs"], ctx.sizes["agg_events"], ctx.sizes["reads"]
    server = pg.Server(pg.find_pg_bin(None), ctx.tmp)
    try:
        server.start()
        conn = server.connect()
        version, settings = pg.server_facts(conn)
        ctx.pg_version = version
        ctx.pg_settings = settings
        batches = pg.copy_batches(n)
        for run in range(runs):
            pg.create_event_tables(conn, with_trigger=True)
            pg.checkpoint(conn)
            secs = pg.copy_all(conn, batches)
            pg.verify_events(conn, n)
            pg.verify_agg(conn, "agg", n)
            ctx.results.add("aggregate", "maintain, durable", "postgres", "rate", n / secs, "events/s")
            log("  postgres aggregate (trigger, COPY %d rows per commit): %.0f/s" % (pg.BATCH_ROWS, n / secs))
            r = run_tool([ctx.tool("agg_bench"), "pg-reads", "--pg-port", str(server.port), "--reads", str(reads),
                          "--events", str(n), "--seed", str(run + 1)])
            ctx.results.add_result("aggregate", "point reads", "postgres", r, READS)
            log("  postgres point reads: %.0f/s p50 %.3f ms" % (r["rate"], r["p50_ms"]))
        del batches
        bn = ctx.sizes["backfill_events"]
        log("postgres: loading %d events for REFRESH / CREATE INDEX (untimed)" % bn)
        pg.load_events(conn, bn)
        refresh = pg.measure_refresh(conn, bn, runs, log)
        for v in refresh["runs"]:
            ctx.results.add("backfill", "from existing events", "postgres REFRESH", "rate", v, "events/s")
        index = pg.measure_create_index(conn, bn, runs, log)
        for v in index["runs"]:
            ctx.results.add("backfill", "from existing events", "postgres CREATE INDEX", "rate", v, "events/s")
        conn.close()
    finally:
        server.stop()


# --- workload 5 and the limits ------------------------------------------------

def backfill_evert(ctx):
    bn, runs = ctx.sizes["backfill_events"], ctx.sizes["runs"]
    out = os.path.join(ctx.tmp, "view_bench.json")
    env = dict(os.environ, TMPDIR=ctx.tmp)
    res = subprocess.run([ctx.tool("view_bench"), "--events", str(bn), "--runs", str(runs), "--json", out],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200, env=env)
    if res.returncode != 0:
        raise RuntimeError("view_bench failed: " + res.stdout[-3000:])
    for line in res.stdout.splitlines():
        m = re.match(r"backfill run \d+, (one thread|decoding ahead): [\d.]+ s, (\d+) events/s", line)
        if m:
            system = "evert, one core" if m.group(1) == "one thread" else "evert"
            ctx.results.add("backfill", "from existing events", system, "rate", float(m.group(2)), "events/s")
        m = re.match(r"steady run \d+: .*: (\d+) events/s", line)
        if m:
            ctx.results.add("aggregate", "maintain in-process (view_bench)", "evert", "rate", float(m.group(1)), "events/s")
    log("  " + " | ".join(l for l in res.stdout.splitlines() if "median" in l))


def limits(ctx):
    secs = ctx.sizes["fio_seconds"]
    for bs in FIO_BLOCKS:
        for sync in (False, True):
            d = tempfile.mkdtemp(prefix="fio-", dir=ctx.tmp)
            cmd = ["fio", "--name=seqwrite", "--directory=" + d, "--rw=write", "--bs=" + bs, "--size=4g",
                   "--ioengine=psync", "--time_based", "--runtime=%d" % secs, "--output-format=json",
                   "--fdatasync=%d" % (1 if sync else 0)]
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
            shutil.rmtree(d, ignore_errors=True)
            if res.returncode != 0:
                raise RuntimeError("fio failed: " + res.stderr[-2000:])
            job = json.loads(res.stdout[res.stdout.index("{"):])["jobs"][0]
            mbs = job["write"]["bw_bytes"] / 1e6
            mode = "fdatasync per write" if sync else "no sync (page cache)"
            name = "fio " + {"100k": "100 KiB", "1m": "1 MiB"}[bs]
            ctx.results.add("limits", mode, name, "mb_per_s", mbs, "MB/s")
            # the same bytes as 100-byte events/s, to set beside the append rates
            ctx.results.add("limits", mode, name, "rate", mbs * 1e6 / 100, "events/s (100 B)")
    port = free_port()
    srv = SERVERS.start("iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
                        os.path.join(ctx.tmp, "iperf3.log"))
    try:
        wait_port(port, srv, "iperf3")
        res = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(ctx.sizes["iperf_seconds"]),
                              "-J"], stdout=subprocess.PIPE, text=True, timeout=120)
        bps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"]
        ctx.results.add("limits", "loopback TCP", "iperf3", "mb_per_s", bps / 8 / 1e6, "MB/s")
    finally:
        SERVERS.stop(srv)


# --- report -------------------------------------------------------------------

ROWS = [
    # (workload, mode, metric): the order of the table
    ("append", "not durable", "rate"),
    ("append", "durable", "rate"),
    ("append", "nats file storage", "rate"),
    ("read", "from start", "rate"),
    ("e2e", "half of peak", "target_rate"),
    ("e2e", "half of peak", "p50_ms"),
    ("e2e", "half of peak", "p99_ms"),
    ("e2e", "half of peak", "p999_ms"),
    ("aggregate", "maintain, durable", "rate"),
    ("aggregate", "maintain in-process (view_bench)", "rate"),
    ("aggregate", "point reads", "rate"),
    ("aggregate", "point reads", "p50_ms"),
    ("aggregate", "point reads", "p99_ms"),
    ("backfill", "from existing events", "rate"),
    ("limits", "no sync (page cache)", "rate"),
    ("limits", "fdatasync per write", "rate"),
    ("limits", "loopback TCP", "rate"),
]


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def table_rows(res):
    """One row per (workload, mode, system, metric), with the ratio evert/peer for the same row."""
    rows = []
    keys = sorted(res.figures, key=lambda k: (
        [w for w, _, _ in ROWS].index(k[0]) if k[0] in [w for w, _, _ in ROWS] else 99, k[1], k[3],
        0 if k[2] == "evert" else 1, k[2]))
    for key in keys:
        workload, mode, system, metric = key
        v = res.figures[key]
        unit = res.units[key]
        evert_key = (workload, mode, "evert", metric)
        if workload == "append" and mode == "nats file storage":
            evert_key = None  # paired by the fsync check below, in the report text
        if workload == "e2e" and system in ("redis", "nats") and metric.endswith("_ms"):
            evert_key = ("e2e", "at %s's rate" % system, "evert", metric)  # equal load
        ratio = None
        if system != "evert" and evert_key in res.figures and workload != "limits":
            e = statistics.median(res.figures[evert_key])
            p = statistics.median(v)
            if p:
                ratio = e / p if not metric.endswith("_ms") else p / e  # > 1: evert better
        rows.append({"workload": workload, "mode": mode, "system": system, "metric": metric, "unit": unit,
                     "runs": v, "median": statistics.median(v), "min": min(v), "max": max(v),
                     "evert_advantage": ratio})
    return rows


def add_cross_ratios(res, rows, fsync_checks):
    """NATS is paired with evert's mode that matches its measured fsync behaviour."""
    nats_fsyncs = sum(c["fsync"] + c["fdatasync"] for c in fsync_checks if c["system"] == "nats")
    evert_mode = "not durable" if nats_fsyncs == 0 else "durable"
    e = res.median(("append", evert_mode, "evert", "rate"))
    for row in rows:
        if row["workload"] == "append" and row["system"] == "nats" and row["metric"] == "rate" and e:
            row["evert_advantage"] = e / row["median"]
            row["paired_with"] = "evert " + evert_mode
    # evert durable append against fio's fdatasync'd bandwidth (the SYSTEM.md target)
    out = {}
    for mode, label, sizes in (("durable", "100 B records", ("fio 100 KiB", "fio 1 MiB")),
                               ("durable, 10 KB records", "10 KB records", ("fio 100 KiB", "fio 1 MiB")),
                               ("durable, pre-built 100 KiB batches, 5 in flight",
                                "pre-built 100 KiB batches of 100 B records, 5 in flight", ("fio 100 KiB",)),
                               ("durable, pre-built 100 KiB batches, 1 in flight",
                                "pre-built 100 KiB batches of 100 B records, 1 in flight", ("fio 100 KiB",))):
        ed = res.median(("append", mode, "evert", "mb_per_s"))
        for bs in sizes:
            f = res.median(("limits", "fdatasync per write", bs, "mb_per_s"))
            if ed and f:
                out["%s vs %s" % (label, bs)] = ed / f
    return out


def write_report(ctx, out_dir, started, load_before, load_after):
    res = ctx.results
    rows = table_rows(res)
    fio_ratio = add_cross_ratios(res, rows, ctx.fsync_checks)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "peers.csv"), "w", newline="") as f:
        w = csv.writer(f)
        runs = max(len(r["runs"]) for r in rows)
        w.writerow(["workload", "mode", "system", "metric", "unit", "median", "min", "max",
                    "evert_advantage"] + ["run%d" % (i + 1) for i in range(runs)])
        for r in rows:
            w.writerow([r["workload"], r["mode"], r["system"], r["metric"], r["unit"], "%.6g" % r["median"],
                        "%.6g" % r["min"], "%.6g" % r["max"],
                        "" if r["evert_advantage"] is None else "%.3f" % r["evert_advantage"]]
                       + ["%.6g" % x for x in r["runs"]])
    lines = ["# Side by side (generated by bench/peers/run.py)", "",
             "Run %s, %d run(s) per figure%s; load average before %s, after %s." % (
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), ctx.sizes["runs"],
                 " (--quick)" if ctx.args.quick else "", load_before, load_after),
             "Figures: median (min–max). *evert ×*: evert's median over the peer's in this run "
             "(> 1 means evert is better; for latencies, peer / evert).", "",
             "| workload | mode | system | metric | median (min–max) | evert × |",
             "|---|---|---|---|---:|---:|"]
    for r in rows:
        if r["unit"] == "events/s (100 B)":
            continue
        span = "%s (%s–%s)" % (fmt(r["median"]), fmt(r["min"]), fmt(r["max"])) if len(r["runs"]) > 1 \
            else fmt(r["median"])
        adv = "" if r["evert_advantage"] is None else "%.2f×" % r["evert_advantage"]
        if r.get("paired_with"):
            adv += " (vs %s)" % r["paired_with"]
        lines.append("| %s | %s | %s | %s (%s) | %s | %s |" % (r["workload"], r["mode"], r["system"], r["metric"],
                                                             r["unit"], span, adv))
    lines += ["", "evert durable append (acks=all) over fio's fdatasync'd sequential write: " +
              ", ".join("%s %.0f%%" % (k, v * 100) for k, v in fio_ratio.items()), "",
              "fsync check (strace -f -c -e trace=fsync,fdatasync on the server for %d s during an untimed "
              "append):" % STRACE_SECONDS, "",
              "| system | mode | fsync | fdatasync |", "|---|---|---:|---:|"]
    for c in ctx.fsync_checks:
        lines.append("| %s | %s | %d | %d |" % (c["system"], c["mode"], c["fsync"], c["fdatasync"]))
    lines += ["", "Versions: " + "; ".join(ctx.versions), ""]
    with open(os.path.join(out_dir, "peers.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "peers.json"), "w") as f:
        json.dump({"rows": rows, "fsync_checks": ctx.fsync_checks, "fio_ratio": fio_ratio,
                   "versions": ctx.versions, "sizes": ctx.sizes}, f, indent=1)
    plot(rows, out_dir)
    return "\n".join(lines)


def plot(rows, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bars(ax, picks, title, ylabel, log_scale=False):
        labels, med, lo, hi = [], [], [], []
        for r in picks:
            # Long modes ("durable, pre-built 100 KiB batches, 5 in flight") wrapped, or they overlap.
            labels.append("%s\n%s" % (r["system"], textwrap.fill(r["mode"], 16)))
            med.append(r["median"])
            lo.append(r["median"] - r["min"])
            hi.append(r["max"] - r["median"])
        colors = ["#c0392b" if l.startswith("evert") else "#7f8c8d" for l in labels]
        ax.bar(range(len(med)), med, yerr=[lo, hi], capsize=4, color=colors)
        ax.set_xticks(range(len(med)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if log_scale:
            ax.set_yscale("log")

    def pick(workload, metric, unit=None):
        return [r for r in rows if r["workload"] == workload and r["metric"] == metric
                and (unit is None or r["unit"] == unit)]

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    bars(axes[0], pick("append", "rate"), "append 100-byte events (median, min–max)", "events/s")
    bars(axes[1], pick("read", "rate"), "read back from the start", "events/s")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "peers_log.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    bars(axes[0], pick("e2e", "p50_ms"), "end-to-end p50 at half of own peak", "ms")
    bars(axes[1], pick("e2e", "p99_ms"), "end-to-end p99 at half of own peak", "ms", log_scale=True)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "peers_latency.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    bars(axes[0], pick("aggregate", "rate", "events/s"), "keep SUM/COUNT per key while appending", "events/s",
         log_scale=True)
    bars(axes[1], pick("aggregate", "rate", "reads/s"), "point reads of random keys, one at a time", "reads/s")
    bars(axes[2], pick("backfill", "rate"), "build the aggregate from existing events", "events/s")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "peers_views.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars(ax, pick("limits", "mb_per_s") + [r for r in rows if r["workload"] == "append"
                                          and r["metric"] == "mb_per_s"],
         "MB/s: physical limits beside the appends", "MB/s", log_scale=True)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "peers_limits.png"), dpi=110)
    plt.close(fig)


def versions(ctx):
    def first_line(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    def deb(pkg):
        return first_line(["dpkg-query", "-W", "-f=${Version}", pkg])

    git = first_line(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    return ["evert %s (RelWithDebInfo, %s)" % (git, ctx.build),
            "redis-server " + deb("redis-server"), "hiredis " + deb("libhiredis-dev"),
            "nats-server " + deb("nats-server"), "libnats " + deb("libnats-dev"),
            "librdkafka " + deb("librdkafka-dev"), "postgresql-15 " + deb("postgresql-15"),
            "fio " + deb("fio"), "iperf3 " + deb("iperf3"), "kernel " + os.uname().release]


# --- main ---------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-peers"))
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, one run (about 2 minutes)")
    p.add_argument("--runs", type=int, help="runs per figure (default 3; --quick 1)")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    p.add_argument("--dir", help="where the temporary directory goes (default $TMPDIR or /tmp)")
    p.add_argument("--only", help="comma-separated subset of: log,e2e,agg,postgres,backfill,limits")
    return p.parse_args(argv)


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    args = parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.runs:
        sizes["runs"] = args.runs
    ctx = Ctx(args, sizes)
    ctx.versions = versions(ctx)
    for tool in ("redis_bench", "nats_bench", "agg_bench", "view_bench"):
        if not os.path.exists(ctx.tool(tool)):
            sys.exit("missing %s: build it (make bench-peers builds everything)" % ctx.tool(tool))
    only = set(args.only.split(",")) if args.only else {"log", "e2e", "agg", "postgres", "backfill", "limits"}
    signal.signal(signal.SIGTERM, raise_interrupt)
    started = time.time()
    load_before = open("/proc/loadavg").read().split()[:3]
    log("bench-peers: %d run(s), temporary directory %s, load average %s" % (sizes["runs"], ctx.tmp,
                                                                             " ".join(load_before)))
    try:
        if "limits" in only:
            log("limits: fio and iperf3")
            for _ in range(sizes["runs"]):
                limits(ctx)
        for run in range(sizes["runs"]):
            if "log" in only:
                log("run %d: append and read" % (run + 1))
                append_read_evert(ctx, run)
                append_read_redis(ctx, run)
                append_read_nats(ctx, run)
            if "agg" in only:
                log("run %d: aggregate" % (run + 1))
                agg_evert(ctx, run)
                agg_redis(ctx, run)
        if "e2e" in only:
            for run in range(sizes["runs"]):
                log("run %d: end to end at half of peak" % (run + 1))
                e2e_all(ctx, run)
        if "postgres" in only:
            log("postgres: trigger, point reads, REFRESH, CREATE INDEX")
            postgres_all(ctx)
        if "backfill" in only:
            log("evert: view_bench (backfill of %d events, steady state)" % sizes["backfill_events"])
            backfill_evert(ctx)
    except KeyboardInterrupt:
        log("interrupted; stopping servers")
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log("bench-peers failed: %s" % e)
        return 1
    finally:
        SERVERS.stop_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    load_after = open("/proc/loadavg").read().split()[:3]
    text = write_report(ctx, args.out, started, " ".join(load_before), " ".join(load_after))
    print(text)
    log("wrote %s/peers.md, peers.csv, peers.json, peers_*.png in %.0f s" % (args.out, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
