"""confluent_kafka (librdkafka 2.0.2) producer and assign()ed consumer."""

import unittest

import confluent_kafka

import kafka_clients as kc
from evert_server import EvertTestCase

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# kafka-python here has no snappy, lz4 or zstd module: it cross-checks the rest.
KAFKA_PYTHON_CODECS = ("none", "gzip")


class ConfluentTest(EvertTestCase):

    def test_every_codec_100k_records_acks_all(self):
        """20k records per codec (100k in all), acks=all, each codec in its own
        4-partition topic; every delivery report is checked and every record
        read back by confluent_kafka, and by kafka-python where it can decode."""
        partitions, per_codec = 4, 20_000
        for codec in CODECS:
            kc.create_topic(self.bootstrap, f"codec-{codec}", partitions)
        produced = {}
        for seed, codec in enumerate(CODECS):
            msgs = kc.make_messages(per_codec, partitions, seed=100 + seed)
            offsets = kc.confluent_produce(self.bootstrap, f"codec-{codec}", msgs,
                                           {"compression.codec": codec, "acks": "all"})
            expected, first = kc.by_partition(msgs, offsets)
            self.assertEqual(first, {p: 0 for p in range(partitions)}, codec)
            produced[codec] = expected
            # librdkafka silently sends uncompressed batches to a broker it
            # thinks lacks the codec: check what was really stored. It also
            # sends a batch uncompressed when compressing would not shrink it
            # (a batch of one or two records, when the machine is busy), so
            # a few such batches may sit beside the compressed ones.
            stored = self.server.stored_codecs(f"codec-{codec}")
            self.assertLessEqual(set(stored), {codec, "none"}, "stored batch codecs")
            self.assertGreater(stored.get(codec, 0), stored.get("none", 0) if codec != "none" else 0,
                               f"stored batch codecs {stored}")

        for codec, expected in produced.items():
            with self.subTest(codec=codec):
                counts = {p: len(m) for p, m in expected.items()}
                got = kc.confluent_consume(self.bootstrap, f"codec-{codec}", counts)
                kc.assert_log_matches(self, expected, got, f"confluent_kafka consumer ({codec})")
                if codec in KAFKA_PYTHON_CODECS:
                    got = kc.kafka_python_consume(self.bootstrap, f"codec-{codec}", counts)
                    kc.assert_log_matches(self, expected, got, f"kafka-python consumer ({codec})")

    def test_acks_0(self):
        """acks=0: the broker sends no response, yet every record is stored."""
        topic = "acks0"
        kc.create_topic(self.bootstrap, topic, 2)
        msgs = kc.make_messages(5000, 2, seed=7)
        # Without a response the client cannot know offsets. (librdkafka
        # 2.0.2 still reports -1, 0, 1, ... within a multi-record batch:
        # it counts up from the -1 "base offset" -- no response was received.)
        kc.confluent_produce(self.bootstrap, topic, msgs, {"acks": "0", "linger.ms": 5})
        expected = kc.by_partition(msgs)
        got = kc.confluent_consume(self.bootstrap, topic, {p: len(m) for p, m in expected.items()})
        kc.assert_log_matches(self, expected, got, "confluent_kafka consumer after acks=0")

    def test_null_header_values(self):
        """Header values may be null (length -1). Read back with kafka-python:
        confluent_kafka 1.7.0's consumer crashes the interpreter on them
        ("none_dealloc", a refcount bug of the Python binding, not of evert)."""
        topic = "null-headers"
        kc.create_topic(self.bootstrap, topic, 2)
        msgs = kc.make_messages(4000, 2, seed=9, null_header_values=True)
        self.assertTrue(any(v is None for m in msgs for _, v in m.headers))
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs, {"compression.codec": "gzip"})
        expected, _ = kc.by_partition(msgs, offsets)
        got = kc.kafka_python_consume(self.bootstrap, topic, {p: len(m) for p, m in expected.items()})
        kc.assert_log_matches(self, expected, got, "kafka-python consumer")

    def test_acks_1_and_consume_from_the_middle(self):
        topic = "acks1"
        kc.create_topic(self.bootstrap, topic, 3)
        msgs = kc.make_messages(3000, 3, seed=8)
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs, {"acks": "1", "compression.codec": "lz4"})
        expected, _ = kc.by_partition(msgs, offsets)
        # Starting mid-batch (lz4 batches hold many records): the client skips
        # the records before the asked-for offset.
        start = {p: 123 + p for p in expected}
        got = kc.confluent_consume(self.bootstrap, topic, {p: len(m) - start[p] for p, m in expected.items()},
                                   start_offsets=start)
        kc.assert_log_matches(self, {p: m[start[p]:] for p, m in expected.items()}, got,
                              "confluent_kafka consumer from the middle", first_offsets=start)

    def test_record_above_max_message_bytes_is_rejected(self):
        """A batch larger than the topic's max.message.bytes is refused with
        MESSAGE_TOO_LARGE; smaller records to the same topic still go through."""
        topic = "small-max"
        kc.create_topic(self.bootstrap, topic, 1, {"max.message.bytes": "10000"})
        reports = []
        producer = confluent_kafka.Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 0,
                                             "compression.codec": "none"})
        producer.produce(topic, value=b"x" * 20000, key=b"big", partition=0,
                         on_delivery=lambda err, msg: reports.append(("big", err, msg.offset())))
        self.assertEqual(producer.flush(30), 0)
        producer.produce(topic, value=b"y" * 1000, key=b"small", partition=0,
                         on_delivery=lambda err, msg: reports.append(("small", err, msg.offset())))
        self.assertEqual(producer.flush(30), 0)
        self.assertEqual(len(reports), 2, reports)
        (_, big_err, _), (_, small_err, small_offset) = reports
        self.assertIsNotNone(big_err, "a 20000-byte record was accepted by a topic with max.message.bytes=10000")
        self.assertEqual(big_err.code(), confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE, str(big_err))
        self.assertIsNone(small_err)
        self.assertEqual(small_offset, 0)
        got = kc.confluent_consume(self.bootstrap, topic, {0: 1})
        self.assertEqual([(r.key, r.value) for r in got[0]], [(b"small", b"y" * 1000)])

    def test_record_above_default_max_message_bytes_is_rejected(self):
        """The broker default (1048588 bytes) applies to topics without an
        override; the client's own limit is raised so the broker decides."""
        topic = "default-max"
        kc.create_topic(self.bootstrap, topic, 1)
        reports = []
        producer = confluent_kafka.Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                                             "message.max.bytes": 4 * 1024 * 1024})
        producer.produce(topic, value=b"z" * (2 * 1024 * 1024), partition=0,
                         on_delivery=lambda err, msg: reports.append(err))
        self.assertEqual(producer.flush(30), 0)
        self.assertEqual(len(reports), 1)
        self.assertIsNotNone(reports[0], "a 2 MiB record was accepted")
        self.assertEqual(reports[0].code(), confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE, str(reports[0]))


if __name__ == "__main__":
    unittest.main()
