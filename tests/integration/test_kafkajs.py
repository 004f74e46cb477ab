"""KafkaJS 2.2.4 producer (node), checked with confluent_kafka and kafka-python.

KafkaJS's consumer needs consumer groups, which evert does not serve yet, so
what KafkaJS writes is read back by the two Python clients.
"""

import json
import unittest

import kafka_clients as kc
from evert_server import EvertTestCase


@unittest.skipUnless(kc.kafkajs_available(),
                     f"KafkaJS not installed: run `npm ci` in {kc.CLIENTS_DIR} (and have node on PATH)")
class KafkaJsTest(EvertTestCase):

    def produce(self, topic, msgs, chunk=5000, acks=-1):
        path = self.scratch_path(f"{topic}.json")
        with open(path, "w") as f:
            json.dump({"topic": topic, "chunk": chunk, "acks": acks,
                       "messages": [{"p": m.partition, "k": kc.b64(m.key), "v": kc.b64(m.value),
                                     "h": [[n, kc.b64(v)] for n, v in m.headers], "ts": m.timestamp}
                                    for m in msgs]}, f)
        return [tuple(x) for x in kc.kafkajs_run("kafkajs_produce.js", [self.bootstrap, path])]

    def test_produce_100k_then_consume_with_confluent_and_kafka_python(self):
        """KafkaJS writes 100k records (chunks alternately plain and gzip) over 4
        partitions with explicit timestamps, keys and headers; every record is
        read back in order by confluent_kafka and by kafka-python."""
        topic, partitions = "kafkajs-100k", 4
        kc.create_topic(self.bootstrap, topic, partitions)
        msgs = kc.make_messages(100_000, partitions, seed=5)
        offsets = self.produce(topic, msgs)
        expected, first = kc.by_partition(msgs, offsets)
        self.assertEqual(first, {p: 0 for p in range(partitions)})
        self.assertEqual(set(self.server.stored_codecs(topic)), {"none", "gzip"}, "stored batch codecs")

        counts = {p: len(m) for p, m in expected.items()}
        got = kc.confluent_consume(self.bootstrap, topic, counts)
        kc.assert_log_matches(self, expected, got, "confluent_kafka consumer")
        got = kc.kafka_python_consume(self.bootstrap, topic, counts)
        kc.assert_log_matches(self, expected, got, "kafka-python consumer")


if __name__ == "__main__":
    unittest.main()
