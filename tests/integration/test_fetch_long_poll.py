"""Fetch long poll: a fetch at the end of the log waits up to max_wait_ms and is
answered as soon as data arrives; an idle fetch returns after max_wait_ms
with no error; a parked fetch does not hold up shutdown."""

import time
import unittest

import confluent_kafka
import kafka

import kafka_clients as kc
from evert_server import EvertTestCase


class FetchLongPollTest(EvertTestCase):

    def produce_one(self, topic, value):
        offsets = kc.confluent_produce(self.bootstrap, topic, [kc.Msg(0, b"k", value, (), int(time.time() * 1000))],
                                       {"linger.ms": 0})
        return time.monotonic(), offsets[0][1]

    def test_waiting_consumer_gets_a_new_record_within_a_second(self):
        """librdkafka asks for up to 10 s of waiting; a record produced while
        its fetch is parked must arrive well before that."""
        topic = "long-poll"
        kc.create_topic(self.bootstrap, topic, 1)
        consumer = kc.confluent_consumer(self.bootstrap, {"fetch.wait.max.ms": 10000})
        try:
            consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
            # By then its first fetch (of an empty partition) is parked at
            # the broker, for up to 10 s.
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                m = consumer.poll(0.1)
                self.assertIsNone(m, f"{m.error() if m else m} before any record: the empty fetch was not held")
            for value in (b"first", b"second"):
                sent_at, offset = self.produce_one(topic, value)
                got = None
                while got is None and time.monotonic() - sent_at < 5:
                    m = consumer.poll(0.05)
                    if m is not None and not m.error():
                        got = m
                self.assertIsNotNone(got, f"{value!r} not received within 5 s")
                latency = time.monotonic() - sent_at
                self.assertEqual((got.offset(), got.value()), (offset, value))
                self.assertLess(latency, 1.0, f"{value!r} took {latency:.2f} s to reach a waiting consumer")
                time.sleep(0.5)
        finally:
            consumer.close()

    def test_idle_fetch_returns_after_max_wait(self):
        """kafka-python at the end of an empty partition with max wait 300 ms:
        every fetch comes back after about 300 ms, without error."""
        topic = "idle"
        kc.create_topic(self.bootstrap, topic, 1)
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, fetch_max_wait_ms=300,
                                       fetch_min_bytes=1, auto_offset_reset="none")
        try:
            tp = kafka.TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            start = time.monotonic()
            while time.monotonic() - start < 3.0:
                self.assertEqual(consumer.poll(timeout_ms=200), {})
            fetch = consumer.metrics()["consumer-fetch-manager-metrics"]
            latency_ms = fetch["fetch-latency-avg"]
            self.assertGreater(latency_ms, 250, f"idle fetches answered after {latency_ms:.0f} ms, not ~300 ms")
            self.assertLess(latency_ms, 1000, f"idle fetches answered after {latency_ms:.0f} ms, not ~300 ms")
            self.assertEqual(consumer.position(tp), 0)
        finally:
            consumer.close(autocommit=False)

    def test_min_bytes_holds_the_fetch_until_max_wait(self):
        """With fetch_min_bytes far above the one small record there is, the
        broker answers at max_wait (2.5 s), not at once; enough new bytes
        answer a parked fetch early."""
        topic = "min-bytes"
        kc.create_topic(self.bootstrap, topic, 1)
        self.produce_one(topic, b"small")
        started = time.monotonic()  # before the consumer's first fetch
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, fetch_max_wait_ms=2500,
                                       fetch_min_bytes=100_000, auto_offset_reset="none")
        try:
            tp = kafka.TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            records = []
            while not records and time.monotonic() - started < 8:
                records = consumer.poll(timeout_ms=100).get(tp, [])
            waited = time.monotonic() - started
            self.assertEqual([r.value for r in records], [b"small"])
            self.assertGreater(waited, 2.3, f"a fetch with min_bytes 100000 and 1 small record came back after "
                                            f"{waited:.2f} s, before max_wait 2.5 s")

            time.sleep(0.3)  # the next fetch is parked, for up to 2.5 s
            big = kc.confluent_produce(self.bootstrap, topic,
                                       [kc.Msg(0, None, bytes([i]) * 60_000, (), 1_600_000_000_000) for i in range(3)],
                                       {"linger.ms": 0})
            sent_at = time.monotonic()
            records = []
            while len(records) < 3 and time.monotonic() - sent_at < 6:
                records += consumer.poll(timeout_ms=50).get(tp, [])
            waited = time.monotonic() - sent_at
            self.assertEqual([r.offset for r in records], [o for _, o in big])
            self.assertLess(waited, 1.0, f"180 kB did not complete a min_bytes=100000 fetch early ({waited:.2f} s)")
        finally:
            consumer.close(autocommit=False)

    def test_stop_while_a_fetch_is_parked(self):
        """SIGTERM with a consumer's 30 s fetch parked: the server stops
        cleanly and promptly."""
        topic = "parked"
        kc.create_topic(self.bootstrap, topic, 1)
        consumer = kc.confluent_consumer(self.bootstrap, {"fetch.wait.max.ms": 30000})
        try:
            consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                consumer.poll(0.1)
            started = time.monotonic()
            self.server.stop()
            self.assertLess(time.monotonic() - started, 5.0, "stop took too long with a parked fetch")
        finally:
            consumer.close()


if __name__ == "__main__":
    unittest.main()
