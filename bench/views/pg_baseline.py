#!/usr/bin/python3
"""PostgreSQL baseline for the view-maintenance benchmark.

Starts a private PostgreSQL 15 server in a fresh temporary directory, measures
what keeping `SELECT customer, count(*), sum(qty) FROM events GROUP BY customer`
up to date costs there, stops the server by its PID and deletes the directory.

  trigger       rows COPYed into `events`, an AFTER INSERT FOR EACH ROW plpgsql
                trigger upserting into `agg`; one transaction per batch.
  plain_insert  the same rows and batches without the trigger (the trigger's
                cost is the difference).
  refresh       REFRESH MATERIALIZED VIEW over --events rows generated inside
                PostgreSQL; CREATE INDEX ON events (customer) is a side figure.

The events are the ones evert's side of the benchmark produces, byte for byte
(`event_json`); PostgreSQL stores their parsed columns, not the JSON text.

Run as root, the server runs as the `postgres` OS user (PostgreSQL refuses
root). Needs python3-psycopg2 and postgresql-15 (`make bench` installs both).
"""

import argparse
import hashlib
import io
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

EVENT_BYTES = 100
CUSTOMER_COUNT = 100_000
CUSTOMER_STRIDE = 7919  # prime, coprime to CUSTOMER_COUNT: i -> customer is a bijection mod 100000
PRODUCT_COUNT = 1000
TS_BASE_MS = 1_700_000_000_000

BATCH_ROWS = 1000
SAMPLE_ROWS = 10_000  # rows compared by checksum between Python and PostgreSQL

SERVER_START_TIMEOUT_S = 60
SERVER_STOP_TIMEOUT_S = 120
PORT_ATTEMPTS_MAX = 5

PG_BIN_CANDIDATES = ["/usr/lib/postgresql/15/bin"]

# Settings given to the server on its command line. fsync and
# synchronous_commit are left at their defaults (on) and reported.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",          # no forced checkpoints inside a timed run
    "checkpoint_timeout": "30min",
    "work_mem": "64MB",             # the 100k-group hash aggregate fits in memory
    "maintenance_work_mem": "512MB",
    "logging_collector": "off",
}

REPORTED_SETTINGS = [
    "server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
    "shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem",
    "maintenance_work_mem", "max_parallel_workers_per_gather", "max_parallel_maintenance_workers",
    "jit", "lc_collate", "server_encoding", "huge_pages",
]

AGGREGATE_SQL = "SELECT customer, count(*) AS n, sum(qty) AS total FROM events GROUP BY customer"


# --- the events -------------------------------------------------------------

def event_json(i):
    """Event i exactly as evert's side generates it: 100 bytes of JSON."""
    core = '{"id":%d,"customer":"c%06d","product":%d,"qty":%d,"ts":%d,"pad":"' % (
        i, (i * CUSTOMER_STRIDE) % CUSTOMER_COUNT, i % PRODUCT_COUNT, i % 10 + 1, TS_BASE_MS + i)
    return core + "x" * (EVENT_BYTES - len(core) - 2) + '"}'


def event_row(i):
    """The columns PostgreSQL stores for event i: (id, customer, product, qty, ts)."""
    return (i, "c%06d" % ((i * CUSTOMER_STRIDE) % CUSTOMER_COUNT), i % PRODUCT_COUNT, i % 10 + 1,
            TS_BASE_MS + i)


# The same formulas in SQL, for generating rows inside the server. bigint
# throughout: i * 7919 overflows int4 from i = 271,183 on.
EVENT_ROW_SQL = ("i, 'c' || lpad(((i * %d) %% %d)::text, 6, '0'), i %% %d, (i %% 10 + 1)::int, %d + i"
                 % (CUSTOMER_STRIDE, CUSTOMER_COUNT, PRODUCT_COUNT, TS_BASE_MS))


def check_event_formulas(sample_ids):
    """The stored columns are the JSON's fields, and every event is 100 bytes."""
    for i in sample_ids:
        text = event_json(i)
        assert len(text.encode()) == EVENT_BYTES, (i, len(text))
        doc = json.loads(text)
        parsed = (doc["id"], doc["customer"], doc["product"], doc["qty"], doc["ts"])
        assert parsed == event_row(i), (i, parsed, event_row(i))


def expected_totals(event_count):
    """(count, sum(qty), count(distinct customer)) of events 0..event_count-1, in closed form."""
    full_cycles, rest = divmod(event_count, 10)
    qty_sum = full_cycles * 55 + rest * (rest + 1) // 2
    return event_count, qty_sum, min(event_count, CUSTOMER_COUNT)


def copy_text(first, count):
    """Rows first..first+count-1 in COPY text format."""
    return "".join("%d\t%s\t%d\t%d\t%d\n" % event_row(i) for i in range(first, first + count)).encode()


def copy_batches(event_count):
    """The COPY payloads of all batches, built before any timing starts."""
    return [copy_text(first, min(BATCH_ROWS, event_count - first))
            for first in range(0, event_count, BATCH_ROWS)]


def sample_digest(sample_rows):
    """md5 over rows 0..sample_rows-1 rendered as PostgreSQL's text output would be."""
    return hashlib.md5(copy_text(0, sample_rows)).hexdigest()


# --- the private server -------------------------------------------------------

def find_pg_bin(explicit):
    candidates = [explicit] if explicit else PG_BIN_CANDIDATES
    for directory in candidates:
        if os.path.exists(os.path.join(directory, "postgres")):
            return directory
    found = shutil.which("postgres")
    if found and not explicit:
        return os.path.dirname(os.path.realpath(found))
    sys.exit("pg_baseline: no PostgreSQL binaries found (tried %s); install postgresql-15"
             % ", ".join(candidates))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL server owned by this process: its directory, its PID.

    start() leaves either a running server or nothing; stop() is safe to call
    at any point and more than once.
    """

    def __init__(self, pg_bin, base_dir):
        self.pg_bin = pg_bin
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = pwd.getpwnam("postgres")
        self.tmp_dir = tempfile.mkdtemp(prefix="evert-pg-baseline-", dir=base_dir)
        if self.run_as:
            os.chown(self.tmp_dir, self.run_as.pw_uid, self.run_as.pw_gid)
        self.data_dir = os.path.join(self.tmp_dir, "data")
        self.log_path = os.path.join(self.tmp_dir, "server.log")
        self.proc = None
        self.port = None

    def _user_kwargs(self):
        # Popen's user/group switch happens in the child before exec, so the
        # PID we hold is the postmaster's own (runuser would sit in between).
        if not self.run_as:
            return {}
        return {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": [],
                "env": dict(os.environ, HOME=self.tmp_dir, USER="postgres", LOGNAME="postgres")}

    def initdb(self):
        cmd = [os.path.join(self.pg_bin, "initdb"), "-D", self.data_dir, "-U", "postgres",
               "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        result = subprocess.run(cmd, cwd=self.tmp_dir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, **self._user_kwargs())
        if result.returncode != 0:
            raise RuntimeError("initdb failed:\n" + result.stdout.decode(errors="replace"))

    def start(self):
        self.initdb()
        for _ in range(PORT_ATTEMPTS_MAX):
            self.port = free_port()
            if self._start_on(self.port):
                return
        raise RuntimeError("server did not start; log:\n" + self.log_tail())

    def _start_on(self, port):
        settings = dict(SERVER_SETTINGS, listen_addresses="127.0.0.1", port=str(port),
                        unix_socket_directories=self.tmp_dir)
        cmd = [os.path.join(self.pg_bin, "postgres"), "-D", self.data_dir]
        for name, value in settings.items():
            cmd += ["-c", "%s=%s" % (name, value)]
        with open(self.log_path, "ab") as log:
            if self.run_as:
                os.chown(self.log_path, self.run_as.pw_uid, self.run_as.pw_gid)
            # Own session: a Ctrl-C reaches only us, and we stop the server in order.
            self.proc = subprocess.Popen(cmd, cwd=self.tmp_dir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True,
                                         **self._user_kwargs())
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False  # e.g. the port was taken between free_port() and bind
            try:
                self.connect().close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server not accepting connections after %d s; log:\n%s"
                           % (SERVER_START_TIMEOUT_S, self.log_tail()))

    def connect(self):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres", connect_timeout=5)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGQUIT)  # "immediate" shutdown
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.proc = None
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None


# --- measurements -------------------------------------------------------------

def repeat(conn, runs, item_count, unit, prepare, body, check, log):
    """Times body() `runs` times, each after prepare() and a checkpoint.

    body() returns its elapsed seconds; check() runs untimed after it. Rates
    are item_count / seconds. WAL bytes are what the timed part wrote.
    """
    rates, seconds, wal_bytes = [], [], []
    for run in range(runs):
        prepare()
        checkpoint(conn)
        lsn_before = wal_lsn(conn)
        elapsed_s = body()
        wal_bytes.append(int(execute(conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)",
                                     (lsn_before,))[0][0]))
        conn.commit()
        check()
        rates.append(item_count / elapsed_s)
        seconds.append(elapsed_s)
        log("  run %d: %.2f s, %.0f %s, WAL %.1f MiB"
            % (run + 1, elapsed_s, rates[-1], unit, wal_bytes[-1] / 2**20))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "unit": unit, "runs": rates, "seconds": seconds, "wal_bytes": wal_bytes}


def wal_lsn(conn):
    lsn = execute(conn, "SELECT pg_current_wal_lsn()::text")[0][0]
    conn.commit()
    return lsn


def execute(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def execute_alone(conn, sql):
    """Run a statement that refuses to run inside a transaction block (VACUUM, ...)."""
    conn.commit()
    conn.autocommit = True
    try:
        execute(conn, sql)
    finally:
        conn.autocommit = False


def checkpoint(conn):
    """Flush dirty buffers so one run's writes are not paid for by the next."""
    execute_alone(conn, "CHECKPOINT")


TRIGGER_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION agg_on_event() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO agg (customer, n, total) VALUES (NEW.customer, 1, NEW.qty)
  ON CONFLICT (customer) DO UPDATE SET n = agg.n + 1, total = agg.total + EXCLUDED.total;
  RETURN NULL;
END
$body$
"""


def create_event_tables(conn, with_trigger):
    execute(conn, "DROP TABLE IF EXISTS events, agg")
    execute(conn, "CREATE TABLE events (id bigint, customer text, product bigint, qty int, ts bigint)")
    if with_trigger:
        execute(conn, "CREATE TABLE agg (customer text PRIMARY KEY, n bigint, total bigint)")
        execute(conn, TRIGGER_FUNCTION_SQL)
        execute(conn, "CREATE TRIGGER events_agg AFTER INSERT ON events "
                      "FOR EACH ROW EXECUTE FUNCTION agg_on_event()")
    conn.commit()


def copy_all(conn, batches):
    """COPY each batch in its own transaction; returns the elapsed seconds."""
    copy_sql = "COPY events (id, customer, product, qty, ts) FROM STDIN"
    started = time.perf_counter()
    with conn.cursor() as cur:
        for payload in batches:
            # One read hands psycopg2 the whole batch (the default is 8 KiB reads).
            cur.copy_expert(copy_sql, io.BytesIO(payload), size=len(payload))
            conn.commit()
    return time.perf_counter() - started


def verify_events(conn, event_count):
    got = execute(conn, "SELECT count(*), coalesce(sum(qty), 0), count(DISTINCT customer) FROM events")[0]
    want = expected_totals(event_count)
    if tuple(got) != want:
        raise RuntimeError("events table holds (count, sum qty, customers) = %s, expected %s"
                           % (tuple(got), want))


def verify_agg(conn, table, event_count):
    got = execute(conn, "SELECT coalesce(sum(n), 0), coalesce(sum(total), 0), count(*) FROM " + table)[0]
    want = expected_totals(event_count)
    if tuple(got) != want:
        raise RuntimeError("%s holds (sum n, sum total, rows) = %s, expected %s"
                           % (table, tuple(got), want))


def measure_insert(conn, batches, event_count, runs, with_trigger, log):
    def check():
        verify_events(conn, event_count)
        if with_trigger:
            verify_agg(conn, "agg", event_count)
    return repeat(conn, runs, event_count, "events/s",
                  prepare=lambda: create_event_tables(conn, with_trigger),
                  body=lambda: copy_all(conn, batches), check=check, log=log)


def load_events(conn, event_count):
    """Generate events 0..event_count-1 inside the server and check them against Python."""
    create_event_tables(conn, with_trigger=False)
    # No bind parameters: EVENT_ROW_SQL's modulo signs would read as placeholders.
    execute(conn, "INSERT INTO events SELECT %s FROM generate_series(0::bigint, %d) AS i"
            % (EVENT_ROW_SQL, event_count - 1))
    conn.commit()
    verify_events(conn, event_count)
    verify_sample(conn, event_count)
    # Set hint bits and the visibility map now, so the first timed scan does
    # not pay for writing them and every run reads the same table.
    execute_alone(conn, "VACUUM (FREEZE, ANALYZE) events")
    checkpoint(conn)


def verify_sample(conn, event_count):
    sample_rows = min(SAMPLE_ROWS, event_count)
    got = execute(conn, """
        SELECT md5(string_agg(concat_ws(E'\\t', id, customer, product, qty, ts) || E'\\n', '' ORDER BY id))
        FROM events WHERE id < %s""", (sample_rows,))[0][0]
    want = sample_digest(sample_rows)
    if got != want:
        raise RuntimeError("rows 0..%d differ from the Python formulas (md5 %s, expected %s)"
                           % (sample_rows - 1, got, want))
    last = event_count - 1
    got_last = tuple(execute(conn, "SELECT id, customer, product, qty, ts FROM events WHERE id = %s",
                             (last,))[0])
    if got_last != event_row(last):
        raise RuntimeError("row %d is %s, expected %s" % (last, got_last, event_row(last)))


def timed(conn, sql):
    started = time.perf_counter()
    execute(conn, sql)
    conn.commit()
    return time.perf_counter() - started


def measure_refresh(conn, event_count, runs, log):
    execute(conn, "CREATE MATERIALIZED VIEW agg_mv AS %s WITH NO DATA" % AGGREGATE_SQL)
    conn.commit()
    return repeat(conn, runs, event_count, "rows/s", prepare=lambda: None,
                  body=lambda: timed(conn, "REFRESH MATERIALIZED VIEW agg_mv"),
                  check=lambda: verify_agg(conn, "agg_mv", event_count), log=log)


def measure_create_index(conn, event_count, runs, log):
    def drop_index():
        execute(conn, "DROP INDEX IF EXISTS events_customer_idx")
        conn.commit()
    return repeat(conn, runs, event_count, "rows/s", prepare=drop_index,
                  body=lambda: timed(conn, "CREATE INDEX events_customer_idx ON events (customer)"),
                  check=lambda: None, log=log)


# --- the run ------------------------------------------------------------------

def server_facts(conn):
    rows = execute(conn, "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                   (REPORTED_SETTINGS,))
    settings = dict(rows)
    settings["jit_available"] = "on" if execute(conn, "SELECT pg_jit_available()")[0][0] else "off"
    version = execute(conn, "SELECT version()")[0][0]
    return version, dict(sorted(settings.items()))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="rows for the refresh test")
    p.add_argument("--trigger-events", type=int, default=1_000_000,
                   help="events COPYed in the trigger and plain_insert tests")
    p.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 100k events, 20k trigger events, 1 run")
    p.add_argument("--pg-bin", help="directory holding initdb and postgres")
    p.add_argument("--dir", help="where to create the temporary data directory (default: $TMPDIR)")
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.trigger_events, args.runs = 100_000, 20_000, 1
    for name in ("events", "trigger_events", "runs"):
        if getattr(args, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    return args


def run(server, args, log):
    conn = server.connect()
    version, settings = server_facts(conn)
    log("server: %s" % version)
    log("data directory: %s (%s)" % (server.data_dir, filesystem_of(server.data_dir)))
    log("settings: " + ", ".join("%s=%s" % kv for kv in settings.items()))
    check_event_formulas([0, 1, 9, 999, 12345, args.trigger_events - 1, args.events - 1])

    results = {}
    batches = copy_batches(args.trigger_events)
    method = "COPY FROM STDIN (psycopg2 copy_expert), %d rows per COPY, one commit per COPY" % BATCH_ROWS
    for name, with_trigger in (("trigger", True), ("plain_insert", False)):
        log("%s: %d events, %s" % (name, args.trigger_events, method))
        results[name] = measure_insert(conn, batches, args.trigger_events, args.runs, with_trigger, log)
    del batches

    log("loading %d events with INSERT ... SELECT generate_series (not timed)" % args.events)
    started = time.perf_counter()
    load_events(conn, args.events)
    log("  loaded and verified in %.1f s" % (time.perf_counter() - started))
    log("refresh: REFRESH MATERIALIZED VIEW agg_mv over %d rows" % args.events)
    results["refresh"] = measure_refresh(conn, args.events, args.runs, log)
    log("create_index: CREATE INDEX ON events (customer) over %d rows" % args.events)
    results["create_index"] = measure_create_index(conn, args.events, args.runs, log)
    conn.close()

    benchmark = {"events": args.events, "trigger_events": args.trigger_events, "runs": args.runs,
                 "insert_method": method, "event_bytes": EVENT_BYTES,
                 "aggregate": AGGREGATE_SQL, "cpus": os.cpu_count()}
    return {"postgres_version": version, "settings": settings, "benchmark": benchmark,
            "results": results}


def filesystem_of(path):
    result = subprocess.run(["df", "--output=fstype,source", path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines = result.stdout.split("\n")
    return " ".join(lines[1].split()) if len(lines) > 1 else "unknown"


def print_summary(report, log):
    log("")
    log("%-14s %14s %14s %14s" % ("result", "median", "min", "max"))
    for name, r in report["results"].items():
        log("%-14s %14.0f %14.0f %14.0f  %s" % (name, r["median"], r["min"], r["max"], r["unit"]))


def write_json(path, report, log):
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    log("wrote %s" % path)


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def with_server(name, pg_bin, base_dir, body, log, errors=()):
    """Runs body(server) against a private server stopped afterwards, also on
    error, Ctrl-C and SIGTERM. Returns (body's result, 0), or (None, exit code)
    after saying why; `errors` are exception types to report besides the server's."""
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)  # clean up on kill, too
    server = Server(find_pg_bin(pg_bin), base_dir)
    try:
        server.start()
        return body(server), 0
    except KeyboardInterrupt:
        log("%s: interrupted; stopping the server" % name)
        return None, 130
    except (RuntimeError, psycopg2.Error) + tuple(errors) as e:
        log("%s: %s" % (name, e))
        if server.proc is not None:
            log("server log (tail):\n" + server.log_tail())
        return None, 1
    finally:
        server.stop()


def main(argv):
    args = parse_args(argv)
    log = lambda line: print(line, flush=True)
    report, code = with_server("pg_baseline", args.pg_bin, args.dir, lambda server: run(server, args, log), log)
    if code:
        return code
    print_summary(report, log)
    if args.json:
        write_json(args.json, report, log)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
