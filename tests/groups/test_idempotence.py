"""librdkafka's idempotent producer over connections cut at random.

The producer talks to evert through ChaosProxy (evert advertises the proxy's
port, so metadata sends the client back through it), which resets random
connections every 50-300 ms. Retried batches must be recognised by their
sequence numbers: reading the log back directly from evert, each partition
holds exactly the values sent to it, once each, in the order sent.
"""

import os
import time
import unittest

from groups_harness import ChaosProxy, GroupTestCase

TOPIC = "payments"
PARTITIONS = 3
COUNT = 50_000


class IdempotenceUnderChaosTest(GroupTestCase):
    start_server = False

    def test_no_duplicates_no_gaps_under_connection_cuts(self):
        from confluent_kafka import KafkaError, Producer

        seed = int(os.environ.get("EVERT_CHAOS_SEED", str(int(time.time()))))
        print(f"\n  chaos seed {seed} (EVERT_CHAOS_SEED={seed} replays the cut timing)", flush=True)
        proxy = ChaosProxy(seed, min_ms=50, max_ms=300)
        self.addCleanup(proxy.close)
        self.server.start(extra_args=["--advertised-port", str(proxy.port)])
        proxy.start(self.server.port)
        direct = self.server.bootstrap
        self.create_topic(TOPIC, PARTITIONS, bootstrap=direct)

        fatal, errors, delivered = [], [], [0]

        def on_error(err):
            (fatal if err.fatal() else errors).append(err)

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered[0] += 1

        p = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True,
                      "linger.ms": 2, "batch.num.messages": 25, "message.timeout.ms": 120000,
                      "retry.backoff.ms": 50, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                      "error_cb": on_error})
        proxy.chaos = True
        start = time.monotonic()
        for i in range(COUNT):
            while True:
                try:
                    p.produce(TOPIC, value=str(i).encode(), partition=i % PARTITIONS, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 100 == 0:
                p.poll(0)
                # Pace the writes so the cuts land in the middle of them.
                time.sleep(0.01)
            if fatal:
                break
        remaining = p.flush(180)
        elapsed = time.monotonic() - start
        proxy.chaos = False
        self.assertEqual(fatal, [], "librdkafka raised a fatal idempotence error")
        self.assertEqual(remaining, 0, "messages still undelivered after 180 s")
        self.assertEqual([e for e in errors if e.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)],
                         [], "delivery errors")
        self.assertEqual(delivered[0], COUNT)
        resent = sum(1 for n in proxy.produce_batches.values() if n > 1)
        print(f"  {COUNT} values in {elapsed:.1f} s, {proxy.cuts} connection cut(s) over {proxy.accepted} "
              f"connection(s), {len(proxy.produce_batches)} batches of which {resent} sent more than once",
              flush=True)
        self.assertGreaterEqual(proxy.cuts, 5, "the proxy hardly cut anything: the test proved nothing")
        self.assertGreater(len(proxy.produce_batches), 0, "the proxy saw no idempotent Produce request")

        # Read back from evert itself, not through the proxy: restart it
        # advertising its own port (this also checks the data survives).
        self.server.stop()
        self.server.start()
        log = self.read_all(TOPIC, PARTITIONS)
        for part in range(PARTITIONS):
            values = [int(v) for _, v in log[part]]
            offsets = [o for o, _ in log[part]]
            self.assertEqual(offsets, list(range(len(offsets))), f"partition {part}: offsets not dense")
            expected = list(range(part, COUNT, PARTITIONS))
            if values != expected:
                seen, dups = set(), []
                for v in values:
                    if v in seen:
                        dups.append(v)
                    seen.add(v)
                missing = sorted(set(expected) - seen)
                first_bad = next(i for i, (a, b) in enumerate(zip(values + [None] * len(expected), expected)) if a != b)
                self.fail(f"partition {part}: {len(values)} values for {len(expected)} sent; "
                          f"{len(dups)} duplicate(s) {dups[:10]}, {len(missing)} missing {missing[:10]}, "
                          f"first difference at index {first_bad}")


class IdempotenceAcrossRestartsTest(GroupTestCase):
    """The producer keeps writing while evert stops cleanly once and is SIGKILLed once.

    Batches in flight at the stop are retried against the restarted broker,
    which must recognise the ones it already has from the producer state it
    rebuilt (snapshot plus log), not append them again.
    """
    start_server = False

    def test_restarts_under_an_idempotent_producer(self):
        import signal
        import threading
        from confluent_kafka import Producer

        # A proxy that cuts nothing, only to count the batches sent more than once.
        proxy = ChaosProxy(seed=0)
        self.addCleanup(proxy.close)
        self.server.start(extra_args=["--advertised-port", str(proxy.port)])
        port = self.server.port
        proxy.start(port)
        self.create_topic(TOPIC, PARTITIONS)
        count = 20_000
        fatal, errors, delivered = [], [], [0]
        p = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True, "linger.ms": 2,
                      "batch.num.messages": 25, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                      "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                      "error_cb": lambda e: (fatal if e.fatal() else errors).append(e)})

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered[0] += 1

        restarts_done = threading.Event()

        def restarter():
            try:
                for how in ("term", "kill"):
                    time.sleep(1.5)
                    if how == "term":
                        self.server.stop()
                    else:
                        proc = self.server.proc
                        proc.send_signal(signal.SIGKILL)
                        proc.wait(timeout=10)
                        self.server.proc = None
                    self.server.start(port=port, extra_args=["--advertised-port", str(proxy.port)])
            finally:
                restarts_done.set()

        t = threading.Thread(target=restarter, daemon=True)
        t.start()
        for i in range(count):
            while True:
                try:
                    p.produce(TOPIC, value=str(i).encode(), partition=i % PARTITIONS, on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 100 == 0:
                p.poll(0)
                if not restarts_done.is_set():
                    time.sleep(0.02)
        self.assertTrue(restarts_done.wait(60))
        t.join(timeout=10)
        self.assertIsNotNone(self.server.proc, "evert did not come back")
        remaining = p.flush(180)
        self.assertEqual(fatal, [], "librdkafka raised a fatal idempotence error")
        self.assertEqual(remaining, 0)
        self.assertEqual(delivered[0], count, [str(e) for e in errors[:5]])
        resent = sum(1 for n in proxy.produce_batches.values() if n > 1)
        print(f"\n  {len(proxy.produce_batches)} batches, {resent} sent more than once", flush=True)
        log = self.read_all(TOPIC, PARTITIONS)
        for part in range(PARTITIONS):
            values = [int(v) for _, v in log[part]]
            expected = list(range(part, count, PARTITIONS))
            self.assertEqual(len(values), len(expected), f"partition {part}: duplicates or losses")
            self.assertEqual(values, expected, f"partition {part}: order")


if __name__ == "__main__":
    unittest.main()
