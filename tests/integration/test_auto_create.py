"""Producing to a topic that does not exist: created on the producer's
metadata request by default, an unknown-topic error with
--auto-create-topics false. Consumers' metadata requests (Metadata v4+ with
allow_auto_topic_creation=false) never create topics."""

import json
import os
import time
import unittest

import confluent_kafka
import kafka
import kafka.errors

import kafka_clients as kc
from evert_server import EvertTestCase

KE = confluent_kafka.KafkaError


def produce_reports(bootstrap, topic, values, conf=None):
    """Delivery reports [(error or None, partition, offset)] for `values`."""
    reports = []
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                                         **(conf or {})})
    for v in values:
        producer.produce(topic, value=v, key=v,
                         on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert producer.flush(30) == 0, "undelivered messages"
    return reports


def topic_names(bootstrap):
    md = kc.confluent_admin(bootstrap).list_topics(timeout=10)
    return {name for name, t in md.topics.items() if t.error is None}


class AutoCreateTest(EvertTestCase):

    def test_confluent_producer_creates_the_topic(self):
        reports = produce_reports(self.bootstrap, "auto-confluent", [b"a", b"b", b"c"])
        self.assertEqual(reports, [(None, 0, 0), (None, 0, 1), (None, 0, 2)])
        self.assertIn("auto-confluent", topic_names(self.bootstrap))
        got = kc.confluent_consume(self.bootstrap, "auto-confluent", {0: 3})
        self.assertEqual([r.value for r in got[0]], [b"a", b"b", b"c"])

    def test_kafka_python_producer_creates_the_topic(self):
        producer = kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, max_block_ms=10000)
        try:
            md = producer.send("auto-kafka-python", b"x", key=b"k").get(timeout=20)
            self.assertEqual((md.partition, md.offset), (0, 0))
        finally:
            producer.close(timeout=10)
        got = kc.kafka_python_consume(self.bootstrap, "auto-kafka-python", {0: 1})
        self.assertEqual([(r.key, r.value) for r in got[0]], [(b"k", b"x")])

    @unittest.skipUnless(os.access(kc.KCAT, os.X_OK), f"kcat not found at {kc.KCAT}")
    def test_kcat_producer_creates_the_topic(self):
        kc.kcat(self.bootstrap, "-P", "-t", "auto-kcat", input_bytes=b"one\ntwo\n")
        got = kc.kcat_consume(self.bootstrap, "auto-kcat")
        self.assertEqual([r.value for r in got[0]], [b"one", b"two"])

    def test_consumer_metadata_does_not_create(self):
        consumer = kc.confluent_consumer(self.bootstrap)  # allow.auto.create.topics=false
        try:
            md = consumer.list_topics("consumer-only", timeout=10)
            err = md.topics["consumer-only"].error
            self.assertIsNotNone(err)
            self.assertEqual(err.code(), KE.UNKNOWN_TOPIC_OR_PART, str(err))
        finally:
            consumer.close()
        self.assertNotIn("consumer-only", topic_names(self.bootstrap))


class AutoCreatePartitionsTest(EvertTestCase):
    server_args = ("--default-partitions", "3")

    def test_auto_created_topic_gets_default_partitions(self):
        reports = produce_reports(self.bootstrap, "auto-three", [b"%d" % i for i in range(30)])
        self.assertTrue(all(err is None for err, _, _ in reports), reports)
        self.assertEqual({p for _, p, _ in reports}, {0, 1, 2})
        md = kc.confluent_admin(self.bootstrap).list_topics("auto-three", timeout=10)
        self.assertEqual(sorted(md.topics["auto-three"].partitions), [0, 1, 2])


class AutoCreateOffTest(EvertTestCase):
    server_args = ("--auto-create-topics", "false")

    def test_confluent_producer_gets_unknown_topic(self):
        started = time.monotonic()
        reports = produce_reports(self.bootstrap, "nowhere", [b"a"],
                                  {"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 10000})
        [(err, _, _)] = reports
        self.assertIsNotNone(err, "delivered to a topic that does not exist")
        self.assertIn(err.code(), (KE.UNKNOWN_TOPIC_OR_PART, KE._UNKNOWN_TOPIC), str(err))
        self.assertLess(time.monotonic() - started, 9, "failed by message timeout, not by an unknown-topic answer")
        self.assertNotIn("nowhere", topic_names(self.bootstrap))

        # Created explicitly, the same topic takes the same record.
        kc.create_topic(self.bootstrap, "nowhere", 1)
        self.assertEqual(produce_reports(self.bootstrap, "nowhere", [b"a"]), [(None, 0, 0)])

    def test_kafka_python_sees_no_partitions(self):
        consumer = kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        try:
            self.assertIsNone(consumer.partitions_for_topic("nowhere"))
        finally:
            consumer.close(autocommit=False)
        producer = kafka.KafkaProducer(bootstrap_servers=self.bootstrap, max_block_ms=1500)
        try:
            with self.assertRaises(kafka.errors.KafkaTimeoutError):  # its way of reporting an unknown topic
                producer.send("nowhere", b"x").get(timeout=10)
        finally:
            producer.close(timeout=10)
        self.assertNotIn("nowhere", topic_names(self.bootstrap))

    @unittest.skipUnless(os.access(kc.KCAT, os.X_OK), f"kcat not found at {kc.KCAT}")
    def test_kcat_metadata_and_produce_report_unknown_topic(self):
        meta = json.loads(kc.kcat(self.bootstrap, "-L", "-J", "-t", "nowhere").stdout)
        [t] = meta["topics"]
        self.assertEqual(t["topic"], "nowhere")
        self.assertIn("Unknown topic", t.get("error", ""), t)
        proc = kc.kcat(self.bootstrap, "-P", "-t", "nowhere", "-X", "topic.metadata.propagation.max.ms=1000",
                       input_bytes=b"x\n", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(b"Unknown topic", proc.stderr)
        self.assertNotIn("nowhere", topic_names(self.bootstrap))


if __name__ == "__main__":
    unittest.main()
