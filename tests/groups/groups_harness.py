"""Shared pieces of the consumer-group and idempotence suites.

EvertServer runs one `evert serve` on a free port with its own data dir and
stops it by PID (SIGTERM, checked exit). ChaosProxy is a TCP forwarder on
127.0.0.1 that can cut every connection through it at random moments.
GroupTestCase gives each test its own server and temp dir, and prints the
server log when the test fails.

Every wait here is bounded: a broken broker fails a test, it never hangs it.
The binary is $EVERT_BIN (ctest sets it), else build-groups/evert.
"""

import collections
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVERT_BIN = os.environ.get("EVERT_BIN") or os.path.join(REPO_DIR, "build-groups", "evert")
PYTHON = "/usr/bin/python3"  # the Debian interpreter that has confluent_kafka and kafka-python
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(REPO_DIR, "tests", "clients", "node_modules")

_LISTENING = re.compile(r"listening kafka=127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0


class ServerError(AssertionError):
    pass


class EvertServer:
    """One evert process over `data_dir`; stderr goes to `log_path`.

    start()/stop() may alternate (restart). `port` pins the Kafka port (to
    restart under clients that stay connected); 0 picks a free one.
    """

    def __init__(self, data_dir, log_path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.port = None
        self._log_start = 0

    @property
    def bootstrap(self):
        assert self.port is not None, "server is not running"
        return f"127.0.0.1:{self.port}"

    def log_text(self, whole=True):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return ""
        return text if whole else text[self._log_start:]

    def start(self, port=0, extra_args=(), timeout_s=START_TIMEOUT_S):
        assert self.proc is None, "server already running"
        if not os.access(EVERT_BIN, os.X_OK):
            raise ServerError(f"evert binary not found at {EVERT_BIN} (set EVERT_BIN)")
        os.makedirs(self.data_dir, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        while True:
            with open(self.log_path, "a") as log:
                log.write(f"==== evert serve --kafka-port {port} {' '.join(extra_args)}\n")
                log.flush()
                self._log_start = log.tell()
                cmd = [EVERT_BIN, "serve", "--data-dir", self.data_dir, "--host", "127.0.0.1",
                       "--kafka-port", str(port), "--pg-port", "0", "--http-port", "0", *extra_args]
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            while True:
                m = _LISTENING.search(self.log_text(whole=False))
                if m:
                    self.port = int(m.group(1))
                    return self
                if self.proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    self.kill()
                    raise ServerError(f"evert did not start within {timeout_s} s:\n{self.log_text()}")
                time.sleep(0.02)
            rc, self.proc = self.proc.returncode, None
            # A pinned port may still be held for a moment by the previous run.
            if port == 0 or time.monotonic() > deadline or "in use" not in self.log_text(whole=False).lower():
                raise ServerError(f"evert exited with status {rc} before listening:\n{self.log_text()}")
            time.sleep(0.2)

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        if self.proc is None:
            return
        proc, self.proc, self.port = self.proc, None, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ServerError(f"evert (pid {proc.pid}) ignored SIGTERM for {timeout_s} s; killed")
        if rc != 0:
            raise ServerError(f"evert (pid {proc.pid}) exited with status {rc}")

    def kill(self):
        if self.proc is None:
            return
        proc, self.proc, self.port = self.proc, None, None
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class ChaosProxy:
    """Forwards 127.0.0.1:<port> to the upstream port, one selector thread.

    While chaos is on, every `min_ms..max_ms` one random live connection (or,
    now and then, all of them) is closed on both sides, as a flaky network
    would. `cuts` counts the connections cut.
    """

    MAX_CONNECTIONS = 64
    BUFFER_BYTES_MAX = 4 << 20  # per direction; reading stops above it

    def __init__(self, seed, min_ms=100, max_ms=500):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.upstream_port = None
        self.rng = random.Random(seed)
        self.min_ms, self.max_ms = min_ms, max_ms
        self.chaos = False
        self.cuts = 0
        self.accepted = 0
        self._pairs = []  # [client_sock, server_sock, buf to server, buf to client, request parser]
        # (topic, partition, producer id, epoch, base sequence) -> times a Produce carried it
        self.produce_batches = collections.Counter()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)

    def start(self, upstream_port):
        self.upstream_port = upstream_port
        self._thread.start()
        return self

    def close(self):
        self._stop = True
        if self._thread.ident is not None:
            self._thread.join(timeout=10)
        for pair in self._pairs:
            self._close_pair(pair)
        self.listener.close()

    def _close_pair(self, pair):
        for s in pair[:2]:
            try:
                s.close()
            except OSError:
                pass

    def _run(self):
        next_cut = time.monotonic() + self._cut_delay()
        while not self._stop:
            readable, writable = [self.listener], []
            for c, s, to_s, to_c, _ in self._pairs:
                if len(to_s) < self.BUFFER_BYTES_MAX:
                    readable.append(c)
                if len(to_c) < self.BUFFER_BYTES_MAX:
                    readable.append(s)
                if to_s:
                    writable.append(s)
                if to_c:
                    writable.append(c)
            try:
                r, w, _ = select.select(readable, writable, [], 0.02)
            except (OSError, ValueError):
                r, w = [], []
            if self.listener in r:
                self._accept()
            dead = []
            for pair in list(self._pairs):
                c, s, to_s, to_c, requests = pair
                try:
                    before = len(to_s)
                    if c in r and not self._pump_in(c, to_s):
                        dead.append(pair)
                        continue
                    requests += to_s[before:]
                    self._sniff_requests(requests)
                    if s in r and not self._pump_in(s, to_c):
                        dead.append(pair)
                        continue
                    if s in w and to_s:
                        del to_s[:s.send(to_s)]
                    if c in w and to_c:
                        del to_c[:c.send(to_c)]
                except OSError:
                    dead.append(pair)
            for pair in dead:
                self._drop(pair)
            if self.chaos and time.monotonic() >= next_cut:
                next_cut = time.monotonic() + self._cut_delay()
                if self._pairs:
                    victims = list(self._pairs) if self.rng.random() < 0.2 else [self.rng.choice(self._pairs)]
                    for pair in victims:
                        self.cuts += 1
                        self._drop(pair)

    def _cut_delay(self):
        return self.rng.uniform(self.min_ms, self.max_ms) / 1000.0

    def _accept(self):
        try:
            c, _ = self.listener.accept()
        except OSError:
            return
        if len(self._pairs) >= self.MAX_CONNECTIONS:
            c.close()
            return
        try:
            s = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            c.close()
            return
        for sock in (c, s):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.accepted += 1
        self._pairs.append([c, s, bytearray(), bytearray(), bytearray()])

    def _sniff_requests(self, buf):
        """Counts the idempotent batches of the complete Produce requests in `buf` (consumed)."""
        while len(buf) >= 4:
            (size,) = struct.unpack_from(">i", buf, 0)
            if len(buf) < 4 + size:
                return
            frame = bytes(buf[4:4 + size])
            del buf[:4 + size]
            api_key, version = struct.unpack_from(">hh", frame, 0)
            if api_key == 0 and 3 <= version <= 8:
                try:
                    self._count_produce(frame)
                except struct.error:
                    pass

    def _count_produce(self, frame):
        pos = 8  # api key, version, correlation id
        (n,) = struct.unpack_from(">h", frame, pos)
        pos += 2 + max(n, 0)  # client id
        (n,) = struct.unpack_from(">h", frame, pos)
        pos += 2 + max(n, 0) + 2 + 4  # transactional id, acks, timeout
        (topics,) = struct.unpack_from(">i", frame, pos)
        pos += 4
        for _ in range(topics):
            (n,) = struct.unpack_from(">h", frame, pos)
            topic = frame[pos + 2:pos + 2 + n].decode()
            pos += 2 + n
            (parts,) = struct.unpack_from(">i", frame, pos)
            pos += 4
            for _ in range(parts):
                partition, size = struct.unpack_from(">ii", frame, pos)
                pos += 8
                if size >= 61:  # one v2 batch: producer id at 43, epoch at 51, base sequence at 53
                    pid, epoch, seq = struct.unpack_from(">qhi", frame, pos + 43)
                    if pid >= 0:
                        self.produce_batches[(topic, partition, pid, epoch, seq)] += 1
                pos += max(size, 0)

    @staticmethod
    def _pump_in(sock, buf):
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        buf += data
        return True

    def _drop(self, pair):
        if pair in self._pairs:
            self._pairs.remove(pair)
            # RST rather than FIN: a cut cable, not a polite goodbye.
            for s in pair[:2]:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            self._close_pair(pair)


class LineReader:
    """Collects the stdout lines of a child process on a thread."""

    def __init__(self, proc, name):
        self.proc = proc
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)
        self.thread.start()

    def _run(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, predicate, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return
            if self.proc.poll() is not None:
                self.thread.join(timeout=5)
                if predicate(self.snapshot()):
                    return
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before {what}; "
                                     f"last lines: {self.snapshot()[-20:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no {what} within {timeout_s} s; last lines: {self.snapshot()[-20:]}")


def wait_until(predicate, timeout_s, what, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def decode_assignment(data):
    """ConsumerProtocol assignment bytes -> {topic: [partitions]}."""
    if not data:
        return {}
    pos = 2  # version
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = {}
    for _ in range(n):
        (tlen,) = struct.unpack_from(">h", data, pos)
        pos += 2
        topic = data[pos:pos + tlen].decode()
        pos += tlen
        (pn,) = struct.unpack_from(">i", data, pos)
        pos += 4
        parts = list(struct.unpack_from(f">{pn}i", data, pos))
        pos += 4 * pn
        out[topic] = sorted(parts)
    return out


class GroupTestCase(unittest.TestCase):
    """A test with its own evert (self.server), started in setUp."""

    start_server = True

    def setUp(self):
        self.tmp_dir = tempfile.mkdtemp(prefix="evert-groups-")
        self.addCleanup(shutil.rmtree, self.tmp_dir, ignore_errors=True)
        self.server = EvertServer(os.path.join(self.tmp_dir, "data"), os.path.join(self.tmp_dir, "server.log"))
        self._children = []
        self.addCleanup(self._stop_server)
        self.addCleanup(self._reap_children)
        if self.start_server:
            self.server.start()

    @property
    def bootstrap(self):
        return self.server.bootstrap

    def spawn(self, cmd, name, env=None):
        """Starts a child whose stdout is collected; killed (by PID) at cleanup."""
        with open(os.path.join(self.tmp_dir, f"{name}.stderr"), "wb") as stderr:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    env=env, cwd=HERE)
        reader = LineReader(proc, name)
        self._children.append((proc, reader))
        return proc, reader

    def child_stderr(self, name):
        try:
            with open(os.path.join(self.tmp_dir, f"{name}.stderr"), "r", errors="replace") as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""

    def _reap_children(self):
        for proc, reader in self._children:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            reader.thread.join(timeout=10)
            if not reader.thread.is_alive():
                proc.stdout.close()

    def _stop_server(self):
        try:
            self.server.stop()
        except Exception:
            self.server.kill()
            raise
        finally:
            self._server_log = self.server.log_text()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        bad_before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > bad_before:
            log = getattr(self, "_server_log", "")
            sys.stderr.write(f"\n---- evert log for {self.id()} (tail) ----\n{log[-20000:]}\n---- end ----\n")
            sys.stderr.flush()
        return out

    # -- client helpers (confluent-kafka = librdkafka 2.0.2) --

    def create_topic(self, name, partitions, bootstrap=None):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": bootstrap or self.bootstrap})
        fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  request_timeout=15)[name]
        fut.result(timeout=20)

    def produce(self, topic, values, partition_of=None, bootstrap=None, extra=None):
        """Produces `values` (str); returns [(partition, offset, value)] in delivery order."""
        from confluent_kafka import Producer
        conf = {"bootstrap.servers": bootstrap or self.bootstrap, "linger.ms": 5}
        conf.update(extra or {})
        p = Producer(conf)
        delivered, errors = [], []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered.append((msg.partition(), msg.offset(), msg.value().decode()))

        for i, v in enumerate(values):
            kwargs = {}
            if partition_of is not None:
                kwargs["partition"] = partition_of(i)
            while True:
                try:
                    p.produce(topic, value=v.encode(), on_delivery=on_delivery, **kwargs)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        remaining = p.flush(60)
        self.assertEqual(remaining, 0, "producer could not deliver within 60 s")
        self.assertEqual(errors, [], "delivery errors")
        return delivered

    def read_all(self, topic, partitions, bootstrap=None, timeout_s=60):
        """Every record of the topic, {partition: [(offset, value)]}, read without a group."""
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        c = Consumer({"bootstrap.servers": bootstrap or self.bootstrap, "group.id": "evert-test-reader",
                      "enable.auto.commit": False, "enable.partition.eof": True})
        try:
            ends = {}
            for p in range(partitions):
                _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[p] = high
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
            out = {p: [] for p in range(partitions)}
            done = {p for p in range(partitions) if ends[p] == 0}
            deadline = time.monotonic() + timeout_s
            while len(done) < partitions and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if m.error():
                        continue
                    out[m.partition()].append((m.offset(), m.value().decode()))
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
            self.assertEqual(len(done), partitions, f"could not read to the end within {timeout_s} s: {ends}")
            return out
        finally:
            c.close()
