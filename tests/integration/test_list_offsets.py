"""ListOffsets by timestamp: the first offset whose timestamp is >= t.

Asked through confluent_kafka's offsets_for_times, kcat -Q and kcat -o s@t,
over several segments (segment.bytes=16384) and many batches, with
timestamps that repeat (partition 0) and that go back and forth (partition 1).
"""

import json
import os
import unittest

import confluent_kafka

import kafka_clients as kc
from evert_server import EvertTestCase

T0 = 1_700_000_000_000


def timestamps():
    # Partition 0: pairs of equal timestamps, rising. Partition 1: distinct
    # timestamps in a scrambled order.
    return {0: [T0 + 10 * (i // 2) for i in range(1200)],
            1: [T0 + 5000 + ((j * 37) % 300) * 10 for j in range(300)]}


def first_at_or_after(stamps, target):
    return next((off for off, ts in enumerate(stamps) if ts >= target), -1)


def targets(stamps):
    out = {T0 - 1_000_000, min(stamps), max(stamps), max(stamps) + 1, max(stamps) + 1_000_000}
    for ts in stamps[::37]:
        out.update((ts - 1, ts, ts + 1))
    return sorted(out)


class ListOffsetsTest(EvertTestCase):

    def fill(self, topic, codec):
        kc.create_topic(self.bootstrap, topic, 2, {"segment.bytes": "16384"})
        stamps = timestamps()
        msgs = [kc.Msg(p, b"k%d" % i, b"%d:" % i + b"v" * 100, (), ts) for p in (0, 1) for i, ts in enumerate(stamps[p])]
        offsets = kc.confluent_produce(self.bootstrap, topic, msgs,
                                       {"compression.codec": codec, "batch.num.messages": 40, "linger.ms": 50})
        kc.by_partition(msgs, offsets)  # offsets rise by one per partition, from 0
        return stamps

    def wrong_answers(self, topic, stamps):
        """[(partition, target, expected, answered)] for offsets_for_times."""
        wrong = []
        consumer = kc.confluent_consumer(self.bootstrap)
        try:
            for p in (0, 1):
                for t in targets(stamps[p]):
                    got = consumer.offsets_for_times([confluent_kafka.TopicPartition(topic, p, t)], timeout=10)[0]
                    self.assertIsNone(got.error)
                    want = first_at_or_after(stamps[p], t)
                    if got.offset != want:
                        wrong.append((p, t - T0, want, got.offset))
        finally:
            consumer.close()
        return wrong

    def test_offsets_for_times_uncompressed(self):
        topic = "ts-plain"
        stamps = self.fill(topic, "none")
        self.assertEqual(self.wrong_answers(topic, stamps), [], "(partition, target - T0, expected, answered)")

    def test_offsets_for_times_compressed(self):
        topic = "ts-lz4"
        stamps = self.fill(topic, "lz4")
        # evert decompresses the batch to find the exact record, as Kafka does.
        self.assertEqual(self.wrong_answers(topic, stamps), [], "(partition, target - T0, expected, answered)")

    @unittest.skipUnless(os.access(kc.KCAT, os.X_OK), f"kcat not found at {kc.KCAT}")
    def test_kcat_query_and_consume_from_timestamp(self):
        topic = "ts-kcat"
        stamps = self.fill(topic, "none")
        for p in (0, 1):
            for t in targets(stamps[p])[::4]:
                want = first_at_or_after(stamps[p], t)
                q = json.loads(kc.kcat(self.bootstrap, "-Q", "-t", f"{topic}:{p}:{t}", "-J").stdout)
                self.assertEqual(q[topic][str(p)]["offset"], want, f"kcat -Q {topic}:{p}:{t - T0}+T0")
                recs = kc.kcat_consume(self.bootstrap, topic, "-o", f"s@{t}", "-c", "1", partition=p).get(p, [])
                if want == -1:
                    self.assertEqual(recs, [], f"kcat -o s@T0+{t - T0} on partition {p}")
                else:
                    self.assertEqual([(r.offset, r.timestamp, r.key) for r in recs],
                                     [(want, stamps[p][want], b"k%d" % want)], f"kcat -o s@T0+{t - T0} on partition {p}")


if __name__ == "__main__":
    unittest.main()
