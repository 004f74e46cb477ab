#!/usr/bin/python3
"""The client subcommands against a real server: `evert topic ...`,
`evert produce`, `evert consume` and `evert bench ...`.

Usage: cli_kafka_test.py EVERT_BINARY [unittest args, e.g. TopicTest]

Every test starts its own `evert serve` on 127.0.0.1 with every port 0 and a
fresh data directory, and stops it by PID (SIGTERM, then wait). Run with
/usr/bin/python3 (the Debian interpreter).
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

EVERT = None  # set from argv in __main__

SERVE_START_TIMEOUT_S = 20
SERVE_STOP_TIMEOUT_S = 20
COMMAND_TIMEOUT_S = 120
LISTENING = re.compile(r"listening kafka=([0-9.]+):(\d+)")
FLOAT = r"([0-9]+(?:\.[0-9]+)?)"
LATENCY = (r"latency ms p50 " + FLOAT + r" p99 " + FLOAT + r" p999 " + FLOAT +
           r" max " + FLOAT)


class Server:
    """One `evert serve` child with its own data directory."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="evert-cli-kafka-")
        self.log_path = os.path.join(self.tmp.name, "serve.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [EVERT, "serve", "--data-dir", os.path.join(self.tmp.name, "data"),
             "--host", "127.0.0.1", "--kafka-port", "0", "--pg-port", "0", "--http-port", "0"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.bootstrap = self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + SERVE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            with open(self.log_path, "r", errors="replace") as f:
                m = LISTENING.search(f.read())
            if m:
                return "%s:%s" % (m.group(1), m.group(2))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise AssertionError("evert serve did not report its port:\n" + self.output())

    def output(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=SERVE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError("evert serve ignored SIGTERM")
        self.log.close()
        code = self.proc.returncode
        self.tmp.cleanup()
        return code


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()

    def tearDown(self):
        code = self.server.stop()
        self.assertEqual(code, 0, "evert serve exited with %s" % code)

    def evert(self, *args, input=None, env=None, timeout=COMMAND_TIMEOUT_S):
        """Runs `evert ARGS --bootstrap-server <this server>`."""
        return self.evert_raw(*args, "--bootstrap-server", self.server.bootstrap,
                              input=input, env=env, timeout=timeout)

    def evert_raw(self, *args, input=None, env=None, timeout=COMMAND_TIMEOUT_S):
        full_env = dict(os.environ)
        full_env.pop("EVERT_BOOTSTRAP_SERVER", None)
        full_env.update(env or {})
        return subprocess.run([EVERT, *args], input=input, capture_output=True,
                              env=full_env, timeout=timeout)

    def ok(self, *args, input=None):
        r = self.evert(*args, input=input)
        self.assertEqual(r.returncode, 0, "evert %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode()

    def fails(self, *args, message, input=None):
        r = self.evert(*args, input=input)
        self.assertNotEqual(r.returncode, 0, "evert %s should fail" % " ".join(args))
        err = r.stderr.decode()
        self.assertIn(message, err)
        self.assertEqual(len(err.strip().splitlines()), 1, "want one clear line, got:\n" + err)
        return r


class TopicTest(ServerTest):
    def test_create_list_describe_alter_delete(self):
        self.assertIn("created topic orders", self.ok(
            "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=60000"))
        self.ok("topic", "create", "events")
        self.assertEqual([t for t in self.ok("topic", "list").split() if not t.startswith("__")],
                         ["events", "orders"])

        self.ok("produce", "orders", "--partition", "1", input=b"a\nb\n")
        d = self.ok("topic", "describe", "orders").splitlines()
        self.assertIn("topic orders partitions 3", d)
        self.assertIn("partition 0 low 0 high 0", d)
        self.assertIn("partition 1 low 0 high 2", d)
        self.assertIn("partition 2 low 0 high 0", d)
        self.assertIn("config retention.ms=60000 override", d)
        self.assertIn("config segment.bytes=1073741824 default", d)

        self.ok("topic", "alter", "orders", "--config", "segment.bytes=1048576")
        d = self.ok("topic", "describe", "orders").splitlines()
        self.assertIn("config segment.bytes=1048576 override", d)
        self.assertIn("config retention.ms=60000 override", d, "alter keeps other overrides")
        self.ok("topic", "alter", "orders", "--delete-config", "retention.ms")
        d = self.ok("topic", "describe", "orders").splitlines()
        self.assertNotIn("config retention.ms=60000 override", d)

        self.assertIn("deleted topic orders", self.ok("topic", "delete", "orders"))
        self.assertNotIn("orders", self.ok("topic", "list").split())
        self.fails("topic", "describe", "orders", message="does not exist")

    def test_errors_are_one_line_and_nonzero(self):
        self.ok("topic", "create", "twice")
        self.fails("topic", "create", "twice", message="already exists")
        self.fails("topic", "describe", "unknown", message="does not exist")
        self.fails("topic", "delete", "unknown", message="does not exist")
        self.fails("topic", "create", "bad name!", message="not a valid topic name")
        self.fails("topic", "create", "cfg", "--config", "no.such.config=1", message="no.such.config")
        self.fails("topic", "create", "cfg", "--config", "novalue", message="key=value")
        self.fails("topic", "alter", "unknown", "--config", "retention.ms=1", message="does not exist")
        self.assertNotIn("cfg", self.ok("topic", "list").split())

    def test_bootstrap_from_environment_and_flag_wins(self):
        env = {"EVERT_BOOTSTRAP_SERVER": self.server.bootstrap}
        r = self.evert_raw("topic", "create", "from-env", env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        r = self.evert_raw("topic", "list", "--bootstrap-server", "127.0.0.1:1", env=env)
        self.assertNotEqual(r.returncode, 0)

    def test_unreachable_server_fails_fast(self):
        # A port nothing listens on: this server's, once it is stopped.
        port_owner = Server()
        bootstrap = port_owner.bootstrap
        port_owner.stop()
        for args in (["topic", "list"], ["topic", "create", "x"], ["consume", "x"],
                     ["bench", "produce", "--topic", "x", "--records", "10"]):
            start = time.monotonic()
            r = self.evert_raw(*args, "--bootstrap-server", bootstrap, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("cannot reach", r.stderr.decode())
            self.assertLess(time.monotonic() - start, 10)
        r = self.evert_raw("produce", "x", "--bootstrap-server", bootstrap, input=b"a\n", timeout=30)
        self.assertNotEqual(r.returncode, 0)


class ClientTest(ServerTest):
    def test_produce_then_consume_identical_and_in_order(self):
        self.ok("topic", "create", "lines")
        lines = ["line %d %s" % (i, "x" * (i % 50)) for i in range(1000)]
        lines[10] = ""  # an empty line is an empty record
        data = ("\n".join(lines) + "\n").encode()
        self.ok("produce", "lines", input=data)
        out = self.ok("consume", "lines", "--from-beginning", "--max-messages", "1000")
        self.assertEqual(out.split("\n")[:-1], lines)

    def test_keys_offsets_partition_and_start_offset(self):
        self.ok("topic", "create", "kv", "--partitions", "2")
        self.ok("produce", "kv", "--key-separator", ":", "--partition", "1", "--acks", "1",
                "--compression", "lz4", input=b"k1:v1\nk2:v2:x\nnokey\n")
        out = self.ok("consume", "kv", "--partition", "1", "--from-beginning", "--print-key",
                      "--print-offset", "--max-messages", "3")
        self.assertEqual(out.splitlines(), ["1\t0\tk1\tv1", "1\t1\tk2\tv2:x", "1\t2\t\tnokey"])
        out = self.ok("consume", "kv", "--partition", "1", "--offset", "2", "--max-messages", "1")
        self.assertEqual(out, "nokey\n")

    def test_consume_stops_when_idle(self):
        self.ok("topic", "create", "few")
        self.ok("produce", "few", input=b"1\n2\n3\n")
        start = time.monotonic()
        out = self.ok("consume", "few", "--from-beginning", "--timeout-ms", "500")
        self.assertEqual(out, "1\n2\n3\n")
        self.assertLess(time.monotonic() - start, 10)
        r = self.evert("consume", "few", "--from-beginning", "--max-messages", "5", "--timeout-ms", "500")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"1\n2\n3\n")
        self.assertIn("3 of 5", r.stderr.decode())

    def test_consume_errors(self):
        self.fails("consume", "missing", "--from-beginning", message="does not exist")
        self.ok("topic", "create", "one")
        self.fails("consume", "one", "--partition", "4", message="no partition 4")
        self.ok("produce", "one", input=b"a\n")
        self.fails("consume", "one", "--offset", "100", "--max-messages", "1", message="out of range")

    def test_produce_reports_failed_records(self):
        self.ok("topic", "create", "small", "--config", "max.message.bytes=1000")
        r = self.evert("produce", "small", "--timeout-ms", "5000", input=b"ok\n" + b"y" * 5000 + b"\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("line 2", r.stderr.decode())


BENCH_PRODUCE = re.compile(r"^produce: (\d+) records, (\d+) B, " + FLOAT + r" records/s, " + FLOAT +
                           r" MB/s, " + LATENCY + "$")
BENCH_CONSUME = re.compile(r"^consume: (\d+) records, (\d+) B, " + FLOAT + r" records/s, " + FLOAT + " MB/s$")
BENCH_E2E = re.compile(r"^e2e: (\d+) records, (\d+) B, " + FLOAT + r" records/s, " + FLOAT +
                       r" MB/s, " + LATENCY + "$")


class BenchTest(ServerTest):
    def summary(self, pattern, *args):
        out = self.ok("bench", *args).strip().splitlines()
        self.assertEqual(len(out), 1, out)
        m = pattern.match(out[0])
        self.assertIsNotNone(m, out[0])
        return [float(g) for g in m.groups()]

    def check_latency(self, p50, p99, p999, mx):
        self.assertGreater(p50, 0)
        self.assertLessEqual(p50, p99)
        self.assertLessEqual(p99, p999)
        self.assertLessEqual(p999, mx)
        self.assertLess(mx, 30_000)

    def test_produce_consume_e2e(self):
        n, size, rps, mbps, *lat = self.summary(
            BENCH_PRODUCE, "produce", "--topic", "b", "--records", "20000", "--record-size", "100",
            "--partitions", "2")
        self.assertEqual((n, size), (20000, 100))
        self.assertGreater(rps, 100)
        self.assertAlmostEqual(mbps, rps * 100 / 1e6, delta=0.2)
        self.check_latency(*lat)
        self.assertIn("topic b partitions 2", self.ok("topic", "describe", "b"))

        self.summary(BENCH_PRODUCE, "produce", "--topic", "b", "--records", "5000", "--acks", "all")

        n, size, rps, mbps = self.summary(BENCH_CONSUME, "consume", "--topic", "b", "--records", "25000")
        self.assertEqual((n, size), (25000, 100))
        self.assertGreater(rps, 100)

        n, size, rps, mbps, *lat = self.summary(
            BENCH_E2E, "e2e", "--topic", "b", "--records", "2000", "--rate", "2000")
        self.assertEqual((n, size), (2000, 100))
        self.assertLess(rps, 2000 * 1.2)
        self.check_latency(*lat)

    def test_throughput_cap(self):
        n, _, rps, *_ = self.summary(BENCH_PRODUCE, "produce", "--topic", "capped", "--records", "3000",
                                     "--throughput", "3000")
        self.assertEqual(n, 3000)
        self.assertLess(rps, 3000 * 1.2)

    def test_raw_produce_lands_every_record(self):
        # 25,001 records in batches of 100 (10,000 bytes of values each), round robin over
        # three partitions; the last request carries one record.
        n, size, rps, mbps, *lat = self.summary(
            BENCH_PRODUCE, "produce", "--raw", "--topic", "raw", "--records", "25001", "--record-size", "100",
            "--partitions", "3", "--acks", "all", "--batch-size", "10000", "--in-flight", "3")
        self.assertEqual((n, size), (25001, 100))
        self.assertGreater(rps, 100)
        self.check_latency(*lat)
        self.assertIn("topic raw partitions 3", self.ok("topic", "describe", "raw"))
        # librdkafka reads them all back, every value 100 bytes.
        n, size, _, _ = self.summary(BENCH_CONSUME, "consume", "--topic", "raw", "--records", "25001")
        self.assertEqual((n, size), (25001, 100))
        r = self.evert("bench", "consume", "--topic", "raw", "--records", "25002", "--timeout-ms", "500")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("only 25001 of 25002", r.stderr.decode())

    def test_raw_produce_rejects_acks_0(self):
        r = self.evert("bench", "produce", "--raw", "--topic", "raw0", "--records", "10", "--acks", "0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--raw needs --acks 1 or all", r.stderr.decode())

    def test_consume_more_than_exists_fails(self):
        self.ok("bench", "produce", "--topic", "short", "--records", "10")
        r = self.evert("bench", "consume", "--topic", "short", "--records", "20", "--timeout-ms", "500")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("only 10 of 20", r.stderr.decode())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: cli_kafka_test.py EVERT_BINARY [unittest args]")
    EVERT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
