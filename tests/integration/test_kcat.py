"""kcat against evert: metadata (-L), produce (-P) and consume (-C)."""

import json
import os
import time
import unittest
import zlib

import kafka_clients as kc
from evert_server import EvertTestCase


@unittest.skipUnless(os.access(kc.KCAT, os.X_OK), f"kcat not found at {kc.KCAT}")
class KcatTest(EvertTestCase):

    def test_metadata_lists_broker_topics_and_partitions(self):
        kc.create_topic(self.bootstrap, "alpha", 4)
        kc.create_topic(self.bootstrap, "beta", 1)
        meta = json.loads(kc.kcat(self.bootstrap, "-L", "-J").stdout)
        self.assertEqual(meta["controllerid"], 0)
        self.assertEqual(meta["brokers"], [{"id": 0, "name": self.bootstrap}])
        # Internal topics (evert keeps group offsets in __consumer_offsets) aside.
        topics = {t["topic"]: t for t in meta["topics"] if not t["topic"].startswith("__")}
        self.assertEqual(sorted(topics), ["alpha", "beta"])
        for name, count in (("alpha", 4), ("beta", 1)):
            self.assertNotIn("error", topics[name])
            parts = sorted(topics[name]["partitions"], key=lambda p: p["partition"])
            self.assertEqual([p["partition"] for p in parts], list(range(count)))
            for p in parts:
                self.assertEqual((p["leader"], p["replicas"], p["isrs"]), (0, [{"id": 0}], [{"id": 0}]))

        one = json.loads(kc.kcat(self.bootstrap, "-L", "-J", "-t", "beta").stdout)
        self.assertEqual([t["topic"] for t in one["topics"]], ["beta"])

    def test_produce_100k_then_consume_with_kcat_and_confluent(self):
        """kcat -P writes 100k keyed records (snappy) with headers over 4
        partitions by key hash; kcat -C and confluent_kafka read every one back."""
        topic, partitions, n = "kcat-100k", 4, 100_000
        kc.create_topic(self.bootstrap, topic, partitions)
        msgs = kc.make_messages(n, partitions, seed=1, text=True, null_keys=False, null_values=False)
        # librdkafka's "consistent" partitioner is CRC-32 of the key modulo the count.
        msgs = [m._replace(partition=zlib.crc32(m.key) % partitions, headers=()) for m in msgs]
        headers = (("source", b"kcat"), ("empty", b""), ("source", b"again"))
        payload = b"".join(m.key + b"\t" + m.value + b"\n" for m in msgs)

        before_ms = int(time.time() * 1000)
        kc.kcat(self.bootstrap, "-P", "-t", topic, "-K", "\\t", "-z", "snappy", "-X", "partitioner=consistent",
                "-X", "linger.ms=20", *[a for name, v in headers for a in ("-H", f"{name}={v.decode()}")],
                input_bytes=payload, timeout_s=120)
        after_ms = int(time.time() * 1000)
        self.assertEqual(set(self.server.stored_codecs(topic)), {"snappy"}, "stored batch codecs")

        got = kc.kcat_consume(self.bootstrap, topic)
        expected = kc.by_partition(msgs)
        self.assertEqual(len(expected), partitions, "the key hash should use every partition")
        # kcat cannot set per-record timestamps: librdkafka stamps the produce
        # time; check the range and order, then compare the rest exactly.
        for p, recs in got.items():
            stamps = [r.timestamp for r in recs]
            self.assertTrue(all(before_ms - 1000 <= t <= after_ms + 1000 for t in stamps), f"partition {p}")
            self.assertEqual(stamps, sorted(stamps), f"partition {p}: timestamps go backwards")
        stamped = {p: [m._replace(headers=headers, timestamp=r.timestamp) for m, r in zip(ms, got.get(p, []))]
                   for p, ms in expected.items()}
        kc.assert_log_matches(self, stamped, got, "kcat -C")

        counts = {p: len(ms) for p, ms in expected.items()}
        by_confluent = kc.confluent_consume(self.bootstrap, topic, counts)
        kc.assert_log_matches(self, stamped, by_confluent, "confluent_kafka consumer")

    def test_consume_tail_and_count(self):
        """-o -N reads the last N records of a partition; -c stops after a count."""
        topic = "kcat-tail"
        kc.create_topic(self.bootstrap, topic, 1)
        kc.kcat(self.bootstrap, "-P", "-t", topic, "-p", "0",
                input_bytes=b"".join(b"line-%d\n" % i for i in range(50)))
        tail = kc.kcat_consume(self.bootstrap, topic, "-o", "-5", partition=0)[0]
        self.assertEqual([(r.offset, r.value) for r in tail], [(i, b"line-%d" % i) for i in range(45, 50)])
        out = kc.kcat(self.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "10", "-c", "3", "-q",
                      "-f", "%o:%s\\n").stdout
        self.assertEqual(out, b"10:line-10\n11:line-11\n12:line-12\n")


if __name__ == "__main__":
    unittest.main()
