"""Test data and thin wrappers around the clients the integration tests drive.

Messages are generated deterministically from a seed, produced with one
client and read back with another; `assert_log_matches` then compares every
key, value, header, timestamp, timestamp type and offset of every partition
against what was produced, in order.

Clients: confluent_kafka (librdkafka 2.0.2), kafka-python 2.0.2 (`kafka`),
kcat (/usr/bin/kcat, librdkafka) and KafkaJS 2.2.4 (node, tests/clients).
"""

import base64
import collections
import json
import os
import random
import shutil
import subprocess
import time

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

KCAT = shutil.which("kcat", path="/usr/bin:/usr/local/bin") or "/usr/bin/kcat"
NODE = shutil.which("node") or "/usr/bin/node"
CLIENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "clients")
NODE_MODULES = os.path.join(CLIENTS_DIR, "node_modules")

# What a producer sent: `partition` is where it was sent, headers a tuple of
# (name str, value bytes or None) pairs.
Msg = collections.namedtuple("Msg", "partition key value headers timestamp")
# What a consumer read back.
Rec = collections.namedtuple("Rec", "partition offset key value headers timestamp timestamp_type")

CREATE_TIME = "create"
APPEND_TIME = "append"

HEADER_NAMES = ("origin", "seq", "trace", "x-empty")


def make_messages(n, partitions, seed, ts_base_ms=None, text=False, null_keys=True, null_values=True,
                  null_header_values=False, value_bytes_max=300):
    """n deterministic messages spread over `partitions`.

    Every record has a distinct key (or a null key) and a `seq` header or key
    naming its index, timestamps are explicit and slightly out of order (so
    the broker must keep per-record deltas, negative ones included), values
    mix compressible and random bytes. text=True keeps keys, values and
    header values printable ASCII without tabs or newlines (for kcat's JSON).
    Header names are sorted so that duplicates are adjacent, which every
    client can express (KafkaJS groups a repeated name into one array).
    """
    rng = random.Random(seed)
    if ts_base_ms is None:
        ts_base_ms = int(time.time() * 1000) - 3_600_000
    msgs = []
    for i in range(n):
        size = rng.randrange(value_bytes_max + 1)
        key = None if (null_keys and i % 23 == 11) else b"key-%06d-%d" % (i, seed)
        if null_values and i % 101 == 50 and key is not None:  # kafka-python refuses null key and value
            value = None
        elif text or i % 2 == 0:
            value = (b"v%d:" % i + base64.b64encode(rng.randbytes(size // 2 + 1)) * 2)[:size]
        else:
            value = rng.randbytes(size)
        names = sorted(rng.choice(HEADER_NAMES) for _ in range(i % 4))
        headers = []
        for name in names:
            if name == "x-empty":
                hv = b""
            elif null_header_values and i % 7 == 3:
                hv = None
            elif text:
                hv = b"h%d-%s" % (i, base64.b64encode(rng.randbytes(6)))
            else:
                hv = b"h%d-" % i + rng.randbytes(6)
            headers.append((name, hv))
        ts = ts_base_ms + 2 * i + (i * 7919) % 5 - 2
        msgs.append(Msg(rng.randrange(partitions), key, value, tuple(headers), ts))
    return msgs


def by_partition(msgs, offsets=None):
    """{partition: [msg, ...]} in produce order; with `offsets` (a (partition,
    offset) per msg, from delivery reports) also checks that each partition's
    offsets rise by one in produce order and returns {partition: first offset}."""
    parts = collections.defaultdict(list)
    for m in msgs:
        parts[m.partition].append(m)
    if offsets is None:
        return dict(parts)
    first = {}
    last = {}
    for m, (p, off) in zip(msgs, offsets, strict=True):
        assert p == m.partition, f"delivered to partition {p}, sent to {m.partition}: {m}"
        if p in last:
            assert off == last[p] + 1, f"partition {p}: offset {off} delivered after {last[p]}"
        else:
            first[p] = off
        last[p] = off
    return dict(parts), first


def _describe(x, limit=120):
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "..."


def assert_log_matches(tc, expected, got, who, first_offsets=None, timestamp_type=CREATE_TIME):
    """Every partition in `got` ({p: [Rec]}) holds exactly `expected` ({p:
    [Msg]}) from `first_offsets[p]` (default 0), in order, field by field."""
    first_offsets = first_offsets or {}
    tc.assertEqual(sorted(p for p in got if got[p]), sorted(p for p in expected if expected[p]),
                   f"{who}: partitions holding records")
    for p in sorted(expected):
        exp, recs = expected[p], got.get(p, [])
        base = first_offsets.get(p, 0)
        for i, (m, r) in enumerate(zip(exp, recs)):
            where = f"{who}: partition {p} record {i} (offset {r.offset})"
            if r.offset != base + i:
                tc.fail(f"{where}: expected offset {base + i}")
            if (r.key, r.value, tuple(r.headers), r.timestamp, r.timestamp_type) != (
                    m.key, m.value, tuple(m.headers), m.timestamp, timestamp_type):
                tc.fail(f"{where} differs:\n  sent {_describe(m)}\n  read {_describe(r)}")
        tc.assertEqual(len(recs), len(exp), f"{who}: partition {p} record count")


# ---- confluent_kafka ----------------------------------------------------------

def confluent_admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name, partitions, config=None):
    admin = confluent_admin(bootstrap)  # must outlive the future
    fut = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10, request_timeout=15)
    fut[name].result(timeout=20)


def confluent_produce(bootstrap, topic, msgs, conf=None, timeout_s=120):
    """Produces `msgs` in order and returns the (partition, offset) of each
    from its delivery report; fails on any delivery error."""
    results = [None] * len(msgs)
    errors = []

    def reporter(i):
        def on_delivery(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results[i] = (msg.partition(), msg.offset())
        return on_delivery

    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "batch.num.messages": 10000,
        "queue.buffering.max.messages": 200000, "queue.buffering.max.kbytes": 512 * 1024,
        **(conf or {})})
    for i, m in enumerate(msgs):
        while True:
            try:
                producer.produce(topic, value=m.value, key=m.key, partition=m.partition, timestamp=m.timestamp,
                                 headers=list(m.headers) if m.headers else None, on_delivery=reporter(i))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(timeout_s)
    assert left == 0, f"{left} messages still undelivered after {timeout_s} s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    assert all(r is not None for r in results), "a message had no delivery report"
    return results


_CONFLUENT_TS_TYPES = {confluent_kafka.TIMESTAMP_CREATE_TIME: CREATE_TIME,
                       confluent_kafka.TIMESTAMP_LOG_APPEND_TIME: APPEND_TIME}


def _confluent_rec(m):
    ts_type, ts = m.timestamp()
    kind = _CONFLUENT_TS_TYPES.get(ts_type, str(ts_type))
    return Rec(m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or ()), ts, kind)


def confluent_consumer(bootstrap, conf=None):
    # librdkafka insists on a group.id even though these tests only assign()
    # and never commit.
    return confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "evert-it-assign", "enable.auto.commit": False,
        "enable.auto.offset.store": False, "enable.partition.eof": True, "auto.offset.reset": "error",
        **(conf or {})})


def confluent_consume(bootstrap, topic, counts, start_offsets=None, conf=None, timeout_s=60):
    """Reads counts[p] records of each partition p from start_offsets[p]
    (default 0) with an assign()ed consumer; fails on a consumer error or if
    a partition holds more than that."""
    start_offsets = start_offsets or {}
    consumer = confluent_consumer(bootstrap, conf)
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, start_offsets.get(p, 0)) for p in counts])
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout_s
        while any(len(got[p]) < counts[p] for p in counts):
            assert time.monotonic() < deadline, (
                f"timed out: read {({p: len(v) for p, v in got.items()})} of {counts}")
            for m in consumer.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {m.error()}")
                got[m.partition()].append(_confluent_rec(m))
        for p in counts:
            # The high watermark of the last fetch response: asking the broker
            # would queue behind the consumer's parked fetch.
            low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), cached=True)
            assert high == start_offsets.get(p, 0) + counts[p], (
                f"partition {p}: high watermark {high}, expected {start_offsets.get(p, 0) + counts[p]}")
        return got
    finally:
        consumer.close()


# ---- kafka-python ---------------------------------------------------------------

def kafka_python_produce(bootstrap, topic, msgs, **conf):
    """Produces `msgs` in order with kafka-python; returns (partition, offset)
    per message from the acknowledged futures."""
    import kafka
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                   batch_size=512 * 1024, buffer_memory=256 * 1024 * 1024,
                                   max_in_flight_requests_per_connection=1, **conf)
    try:
        futures = [producer.send(topic, value=m.value, key=m.key, partition=m.partition, timestamp_ms=m.timestamp,
                                 headers=list(m.headers)) for m in msgs]
        producer.flush(timeout=120)
        out = []
        for f in futures:
            md = f.get(timeout=30)
            out.append((md.partition, md.offset))
        return out
    finally:
        producer.close(timeout=10)


def kafka_python_consume(bootstrap, topic, counts, start_offsets=None, timeout_s=90, **conf):
    """kafka-python without a group: assign() and seek, read counts[p] per partition."""
    import kafka
    start_offsets = start_offsets or {}
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                   auto_offset_reset="none", max_poll_records=20000,
                                   max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
                                   **conf)
    try:
        tps = {p: kafka.TopicPartition(topic, p) for p in counts}
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, start_offsets.get(p, 0))
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout_s
        while any(len(got[p]) < counts[p] for p in counts):
            assert time.monotonic() < deadline, (
                f"timed out: read {({p: len(v) for p, v in got.items()})} of {counts}")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    kind = {0: CREATE_TIME, 1: APPEND_TIME}.get(r.timestamp_type, str(r.timestamp_type))
                    got[tp.partition].append(Rec(tp.partition, r.offset, r.key, r.value, tuple(r.headers),
                                                 r.timestamp, kind))
        ends = consumer.end_offsets(list(tps.values()))
        for p, tp in tps.items():
            assert ends[tp] == start_offsets.get(p, 0) + counts[p], (
                f"partition {p}: end offset {ends[tp]}, expected {start_offsets.get(p, 0) + counts[p]}")
        return got
    finally:
        consumer.close(autocommit=False)


# ---- kcat -----------------------------------------------------------------------

def kcat(bootstrap, *args, input_bytes=None, timeout_s=60, check=True):
    """Runs kcat against `bootstrap`; returns the CompletedProcess (bytes)."""
    proc = subprocess.run([KCAT, "-b", bootstrap, *args], input=input_bytes, capture_output=True,
                          timeout=timeout_s)
    if check and proc.returncode != 0:
        raise AssertionError(f"kcat {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc


def kcat_consume(bootstrap, topic, *extra, partition=None):
    """All records of `topic` (or one partition) from the beginning to the
    end, with kcat's JSON envelope. Keys, values and headers must be text."""
    args = ["-C", "-t", topic, "-e", "-J", "-q", *extra]
    if "-o" not in extra:
        args += ["-o", "beginning"]
    if partition is not None:
        args += ["-p", str(partition)]
    out = kcat(bootstrap, *args).stdout.decode()
    got = collections.defaultdict(list)
    for line in out.splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        h = j.get("headers") or []
        headers = tuple((h[i], None if h[i + 1] is None else h[i + 1].encode()) for i in range(0, len(h), 2))
        enc = (lambda s: None if s is None else s.encode())
        got[j["partition"]].append(Rec(j["partition"], j["offset"], enc(j.get("key")), enc(j.get("payload")),
                                       headers, j["ts"], {"create": CREATE_TIME, "logappend": APPEND_TIME}.get(
                                           j["tstype"], j["tstype"])))
    return dict(got)


# ---- KafkaJS --------------------------------------------------------------------

def kafkajs_available():
    return os.path.isdir(os.path.join(NODE_MODULES, "kafkajs")) and os.access(NODE, os.X_OK)


def kafkajs_run(script, args, input_path=None, timeout_s=120):
    """Runs a node script of tests/integration with tests/clients/node_modules
    on its module path; returns its stdout parsed as JSON."""
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    proc = subprocess.run([NODE, os.path.join(os.path.dirname(os.path.abspath(__file__)), script), *args],
                          capture_output=True, timeout=timeout_s, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"node {script} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-4000:]}")
    return json.loads(proc.stdout)


def b64(b):
    return None if b is None else base64.b64encode(b).decode()
