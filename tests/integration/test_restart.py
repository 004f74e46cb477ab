"""Restart on the same data directory: everything written before is read back
identical (offsets, keys, values, headers, timestamps), topic metadata and
configs survive, and new records continue the offsets."""

import unittest

import confluent_kafka
from confluent_kafka.admin import ConfigResource, NewPartitions

import kafka_clients as kc
from evert_server import EvertTestCase


class RestartTest(EvertTestCase):

    def read_all(self, topic, counts):
        by_confluent = kc.confluent_consume(self.bootstrap, topic, counts)
        by_kafka_python = kc.kafka_python_consume(self.bootstrap, topic, counts)
        self.assertEqual(by_confluent, by_kafka_python, "the two consumers disagree")
        return by_confluent

    def topic_state(self, topic):
        admin = kc.confluent_admin(self.bootstrap)
        md = admin.list_topics(timeout=10)
        [(_, fut)] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).items()
        overrides = {name: e.value for name, e in fut.result(timeout=20).items() if not e.is_default}
        names = {n for n in md.topics if not n.startswith("__")}
        return names, len(md.topics[topic].partitions), overrides

    def test_stop_start_reads_identical_and_offsets_continue(self):
        topic = "durable"
        kc.create_topic(self.bootstrap, topic, 3, {"retention.ms": "86400000", "segment.bytes": "1048576"})
        kc.create_topic(self.bootstrap, "doomed", 1)
        admin = kc.confluent_admin(self.bootstrap)
        admin.create_partitions([NewPartitions(topic, 4)])[topic].result(timeout=20)
        admin.delete_topics(["doomed"])["doomed"].result(timeout=20)
        del admin

        msgs = kc.make_messages(30_000, 4, seed=11)
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs[:20_000], {"compression.codec": "gzip"})
        offsets += kc.kafka_python_produce(self.bootstrap, topic, msgs[20_000:])
        expected, _ = kc.by_partition(msgs, offsets)
        counts = {p: len(m) for p, m in expected.items()}
        before = self.read_all(topic, counts)
        kc.assert_log_matches(self, expected, before, "before restart")
        state = self.topic_state(topic)
        self.assertEqual(state, ({topic}, 4, {"retention.ms": "86400000", "segment.bytes": "1048576"}))

        self.server.restart()
        self.assertEqual(self.read_all(topic, counts), before, "records differ after restart")
        self.assertEqual(self.topic_state(topic), state, "topics or configs differ after restart")

        more = kc.make_messages(2_000, 4, seed=12, ts_base_ms=msgs[-1].timestamp + 10)
        more_offsets = kc.confluent_produce(self.bootstrap, topic, more)
        more_expected, first = kc.by_partition(more, more_offsets)
        self.assertEqual(first, counts, "offsets after restart do not continue from the old end")

        self.server.restart()
        all_counts = {p: counts[p] + len(more_expected[p]) for p in counts}
        after = self.read_all(topic, all_counts)
        kc.assert_log_matches(self, {p: expected[p] + more_expected[p] for p in counts}, after, "after two restarts")

    def test_sigkill_keeps_acknowledged_records(self):
        """acks=all records survive the process being killed (SIGKILL)."""
        topic = "killed"
        kc.create_topic(self.bootstrap, topic, 2)
        msgs = kc.make_messages(5_000, 2, seed=13)
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs, {"acks": "all"})
        expected, _ = kc.by_partition(msgs, offsets)
        self.server.kill()
        self.server.start()
        got = kc.confluent_consume(self.bootstrap, topic, {p: len(m) for p, m in expected.items()})
        kc.assert_log_matches(self, expected, got, "after SIGKILL and restart")
        consumer = kc.confluent_consumer(self.bootstrap)
        try:
            for p, m in expected.items():
                self.assertEqual(consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=10),
                                 (0, len(m)))
        finally:
            consumer.close()


if __name__ == "__main__":
    unittest.main()
