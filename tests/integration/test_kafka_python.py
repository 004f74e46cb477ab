"""kafka-python 2.0.2: producer, and a consumer without a group (assign())."""

import unittest

import kafka
import kafka.errors

import kafka_clients as kc
from evert_server import EvertTestCase


class KafkaPythonTest(EvertTestCase):

    def test_produce_100k_then_consume_with_kafka_python_and_confluent(self):
        """kafka-python writes 100k records (half gzip) over 4 partitions with
        explicit timestamps and headers; kafka-python and confluent_kafka read
        every one back in order."""
        topic, partitions = "kp-100k", 4
        kc.create_topic(self.bootstrap, topic, partitions)
        expected, offsets = {}, []
        msgs = kc.make_messages(100_000, partitions, seed=3)
        # Two producers, so that both a plain and a compressed batch format
        # land in every partition.
        offsets += kc.kafka_python_produce(self.bootstrap, topic, msgs[:50_000])
        offsets += kc.kafka_python_produce(self.bootstrap, topic, msgs[50_000:], compression_type="gzip")
        expected, first = kc.by_partition(msgs, offsets)
        self.assertEqual(first, {p: 0 for p in range(partitions)})
        self.assertEqual(set(self.server.stored_codecs(topic)), {"none", "gzip"}, "stored batch codecs")

        counts = {p: len(m) for p, m in expected.items()}
        got = kc.kafka_python_consume(self.bootstrap, topic, counts)
        kc.assert_log_matches(self, expected, got, "kafka-python consumer")
        got = kc.confluent_consume(self.bootstrap, topic, counts)
        kc.assert_log_matches(self, expected, got, "confluent_kafka consumer")

    def test_consume_from_offsets_and_seek(self):
        topic = "kp-seek"
        kc.create_topic(self.bootstrap, topic, 2)
        msgs = kc.make_messages(2000, 2, seed=4)
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs, {"compression.codec": "gzip"})
        expected, _ = kc.by_partition(msgs, offsets)
        start = {0: 500, 1: len(expected[1]) - 1}
        got = kc.kafka_python_consume(self.bootstrap, topic, {p: len(m) - start[p] for p, m in expected.items()},
                                      start_offsets=start)
        kc.assert_log_matches(self, {p: m[start[p]:] for p, m in expected.items()}, got,
                              "kafka-python consumer from offsets", first_offsets=start)

    def test_offset_lookups(self):
        """beginning_offsets / end_offsets / offsets_for_times (ListOffsets v1)."""
        topic = "kp-offsets"
        kc.create_topic(self.bootstrap, topic, 2)
        msgs = [kc.Msg(i % 2, b"k%d" % i, b"v%d" % i, (), 1_600_000_000_000 + 10 * i) for i in range(100)]
        kc.kafka_python_produce(self.bootstrap, topic, msgs)
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            tps = [kafka.TopicPartition(topic, p) for p in (0, 1)]
            self.assertEqual(consumer.beginning_offsets(tps), {tps[0]: 0, tps[1]: 0})
            self.assertEqual(consumer.end_offsets(tps), {tps[0]: 50, tps[1]: 50})
            # Partition 0 holds i = 0, 2, 4, ...: timestamp base + 20 * offset.
            found = consumer.offsets_for_times({tps[0]: 1_600_000_000_000 + 205, tps[1]: 1_600_000_000_000 + 10})
            self.assertEqual((found[tps[0]].offset, found[tps[0]].timestamp), (11, 1_600_000_000_000 + 220))
            self.assertEqual((found[tps[1]].offset, found[tps[1]].timestamp), (0, 1_600_000_000_000 + 10))
            self.assertIsNone(consumer.offsets_for_times({tps[0]: 1_700_000_000_000})[tps[0]])
        finally:
            consumer.close(autocommit=False)

    def test_message_too_large(self):
        topic = "kp-too-large"
        kc.create_topic(self.bootstrap, topic, 1, {"max.message.bytes": "5000"})
        producer = kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, retries=0)
        try:
            with self.assertRaises(kafka.errors.MessageSizeTooLargeError):
                producer.send(topic, b"x" * 8000, partition=0).get(timeout=30)
            self.assertEqual(producer.send(topic, b"y" * 100, partition=0).get(timeout=30).offset, 0)
        finally:
            producer.close(timeout=10)


if __name__ == "__main__":
    unittest.main()
