"""Topic administration: confluent_kafka AdminClient and kafka-python KafkaAdminClient.

Create (with configs, validate-only, error cases), DescribeConfigs (overrides
versus defaults), AlterConfigs (replaces the whole override set, as in Kafka),
CreatePartitions and DeleteTopics, each checked through Metadata and by
producing to and reading from the result.
"""

import unittest

import confluent_kafka
import kafka
import kafka.admin
import kafka.errors
from confluent_kafka.admin import ConfigResource, ConfigSource, NewPartitions, NewTopic

import kafka_clients as kc
from evert_server import EvertTestCase

KE = confluent_kafka.KafkaError
DEFAULT_SEGMENT_BYTES = str(1 << 30)
DEFAULT_MAX_MESSAGE_BYTES = "1048588"


class ConfluentAdminTest(EvertTestCase):

    def setUp(self):
        super().setUp()
        self.admin = kc.confluent_admin(self.bootstrap)
        self.addCleanup(delattr, self, "admin")  # destroys the client before the server stops

    def create(self, *topics, validate_only=False):
        futures = self.admin.create_topics(list(topics), operation_timeout=10, request_timeout=15,
                                           validate_only=validate_only)
        return {name: f.exception(timeout=20) for name, f in futures.items()}

    def partition_count(self, topic):
        md = self.admin.list_topics(timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return len(t.partitions)

    def configs(self, topic):
        [(_, fut)] = self.admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)],
                                                 request_timeout=15).items()
        return fut.result(timeout=20)

    def assert_kafka_error(self, exc, code):
        self.assertIsInstance(exc, confluent_kafka.KafkaException, exc)
        self.assertEqual(exc.args[0].code(), code, str(exc))

    def test_create_describe_alter_grow_delete(self):
        overrides = {"retention.ms": "3600000", "max.message.bytes": "200000", "cleanup.policy": "delete"}
        self.assertEqual(self.create(NewTopic("adm", 3, 1, config=overrides)), {"adm": None})
        self.assertEqual(self.partition_count("adm"), 3)

        entries = self.configs("adm")
        for name, value in overrides.items():
            e = entries[name]
            self.assertEqual((e.value, e.is_default, e.source), (value, False, ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
                             name)
        seg = entries["segment.bytes"]
        self.assertEqual((seg.value, seg.is_default, seg.source),
                         (DEFAULT_SEGMENT_BYTES, True, ConfigSource.DEFAULT_CONFIG.value))

        # AlterConfigs (not incremental) sets the complete override set.
        [(_, fut)] = self.admin.alter_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, "adm", set_config={"retention.ms": "7200000"})]).items()
        fut.result(timeout=20)
        entries = self.configs("adm")
        self.assertEqual((entries["retention.ms"].value, entries["retention.ms"].is_default), ("7200000", False))
        self.assertEqual((entries["max.message.bytes"].value, entries["max.message.bytes"].is_default),
                         (DEFAULT_MAX_MESSAGE_BYTES, True))

        [(_, fut)] = self.admin.create_partitions([NewPartitions("adm", 5)], operation_timeout=10,
                                                  request_timeout=15).items()
        fut.result(timeout=20)
        self.assertEqual(self.partition_count("adm"), 5)
        msgs = [kc.Msg(p, b"k%d" % p, b"v%d" % p, (), 1_600_000_000_000 + p) for p in range(5)]
        offsets = kc.confluent_produce(self.bootstrap, "adm", msgs)
        self.assertEqual(offsets, [(p, 0) for p in range(5)])
        got = kc.confluent_consume(self.bootstrap, "adm", {p: 1 for p in range(5)})
        kc.assert_log_matches(self, kc.by_partition(msgs), got, "confluent_kafka consumer after CreatePartitions")

        [(_, fut)] = self.admin.delete_topics(["adm"], operation_timeout=10, request_timeout=15).items()
        fut.result(timeout=20)
        self.assertIsNone(self.partition_count("adm"))
        [(_, fut)] = self.admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "adm")]).items()
        self.assert_kafka_error(fut.exception(timeout=20), KE.UNKNOWN_TOPIC_OR_PART)

        # A topic re-created under the same name starts empty.
        self.assertEqual(self.create(NewTopic("adm", 1, 1)), {"adm": None})
        consumer = kc.confluent_consumer(self.bootstrap)
        try:
            self.assertEqual(consumer.get_watermark_offsets(confluent_kafka.TopicPartition("adm", 0), timeout=10),
                             (0, 0))
        finally:
            consumer.close()

    def test_create_errors_and_validate_only(self):
        self.assertEqual(self.create(NewTopic("exists", 1, 1)), {"exists": None})
        errors = self.create(NewTopic("exists", 2, 1), NewTopic("bad-config", 1, 1, config={"retention.ms": "soon"}),
                             NewTopic("three-replicas", 1, 3), NewTopic("bad/name", 1, 1))
        self.assert_kafka_error(errors["exists"], KE.TOPIC_ALREADY_EXISTS)
        self.assert_kafka_error(errors["bad-config"], KE.INVALID_CONFIG)
        self.assert_kafka_error(errors["three-replicas"], KE.INVALID_REPLICATION_FACTOR)
        self.assert_kafka_error(errors["bad/name"], KE.TOPIC_EXCEPTION)
        self.assertEqual(self.partition_count("exists"), 1)
        for name in ("bad-config", "three-replicas"):
            self.assertIsNone(self.partition_count(name), name)

        self.assertEqual(self.create(NewTopic("dry-run", 2, 1), validate_only=True), {"dry-run": None})
        self.assertIsNone(self.partition_count("dry-run"))

        [(_, fut)] = self.admin.create_partitions([NewPartitions("exists", 1)]).items()
        self.assert_kafka_error(fut.exception(timeout=20), KE.INVALID_PARTITIONS)
        [(_, fut)] = self.admin.create_partitions([NewPartitions("missing", 3)]).items()
        self.assert_kafka_error(fut.exception(timeout=20), KE.UNKNOWN_TOPIC_OR_PART)
        [(_, fut)] = self.admin.delete_topics(["missing"]).items()
        self.assert_kafka_error(fut.exception(timeout=20), KE.UNKNOWN_TOPIC_OR_PART)
        [(_, fut)] = self.admin.alter_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, "exists", set_config={"segment.bytes": "-5"})]).items()
        self.assert_kafka_error(fut.exception(timeout=20), KE.INVALID_CONFIG)


class KafkaPythonAdminTest(EvertTestCase):

    def setUp(self):
        super().setUp()
        self.admin = kafka.admin.KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        self.addCleanup(self.admin.close)

    def describe(self, topic):
        """{name: (value, is_default)} from DescribeConfigs."""
        [response] = self.admin.describe_configs(
            [kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, topic)])
        [(error_code, error_message, _, name, entries)] = response.resources
        self.assertEqual((error_code, name), (0, topic), error_message)
        out = {}
        for entry in entries:
            # v0: (name, value, read_only, is_default, is_sensitive);
            # v1+: (name, value, read_only, config_source, is_sensitive, synonyms).
            is_default = entry[3] if response.API_VERSION == 0 else entry[3] == 5
            out[entry[0]] = (entry[1], is_default)
        return out

    def partitions(self, topic):
        [t] = self.admin.describe_topics([topic])
        return t["error_code"], sorted(p["partition"] for p in t["partitions"])

    def test_create_describe_alter_grow_delete(self):
        self.admin.create_topics([kafka.admin.NewTopic("kpadm", 2, 1, topic_configs={"retention.ms": "1000000"})])
        self.assertIn("kpadm", self.admin.list_topics())
        self.assertEqual(self.partitions("kpadm"), (0, [0, 1]))
        cfg = self.describe("kpadm")
        self.assertEqual(cfg["retention.ms"], ("1000000", False))
        self.assertEqual(cfg["segment.bytes"], (DEFAULT_SEGMENT_BYTES, True))

        with self.assertRaises(kafka.errors.TopicAlreadyExistsError):
            self.admin.create_topics([kafka.admin.NewTopic("kpadm", 2, 1)])

        response = self.admin.alter_configs(
            [kafka.admin.ConfigResource(kafka.admin.ConfigResourceType.TOPIC, "kpadm",
                                        configs={"segment.bytes": "1048576"})])
        self.assertEqual([r[0] for r in response.resources], [0])
        cfg = self.describe("kpadm")
        self.assertEqual(cfg["segment.bytes"], ("1048576", False))
        self.assertEqual(cfg["retention.ms"][1], True, "AlterConfigs replaces the whole override set")

        self.admin.create_partitions({"kpadm": kafka.admin.NewPartitions(4)})
        self.assertEqual(self.partitions("kpadm"), (0, [0, 1, 2, 3]))
        msgs = [kc.Msg(3, b"k", b"to the new partition", (("h", b"1"),), 1_600_000_000_000)]
        self.assertEqual(kc.kafka_python_produce(self.bootstrap, "kpadm", msgs), [(3, 0)])
        got = kc.kafka_python_consume(self.bootstrap, "kpadm", {3: 1})
        kc.assert_log_matches(self, {3: msgs}, got, "kafka-python consumer after CreatePartitions")

        response = self.admin.delete_topics(["kpadm"])
        self.assertEqual([tuple(r[:2]) for r in response.topic_error_codes], [("kpadm", 0)])
        self.assertNotIn("kpadm", self.admin.list_topics())
        with self.assertRaises(kafka.errors.UnknownTopicOrPartitionError):
            self.admin.delete_topics(["kpadm"])


if __name__ == "__main__":
    unittest.main()
