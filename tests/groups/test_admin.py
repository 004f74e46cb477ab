"""Group administration: ListGroups/DescribeGroups, DeleteGroups, OffsetFetch without commits."""

import time
import unittest

from groups_harness import GroupTestCase, decode_assignment, wait_until

GROUP_ID_NOT_FOUND = 69
NON_EMPTY_GROUP = 68


class AdminTest(GroupTestCase):

    def members(self, n, group, topic):
        from confluent_kafka import Consumer
        out = []
        for i in range(n):
            c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "client.id": f"member-{i}",
                          "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                          "auto.offset.reset": "earliest"})
            c.subscribe([topic])
            out.append(c)
        return out

    def poll_all(self, consumers, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for c in consumers:
                c.poll(0.05)

    def describe(self, group):
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        found = [g for g in admin.list_groups(group, timeout=10) if g.id == group]
        return found[0] if found else None

    def delete_groups(self, groups):
        from kafka.admin import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            return dict((g, getattr(e, "errno", e)) for g, e in admin.delete_consumer_groups(groups))
        finally:
            admin.close()

    def test_list_describe_delete(self):
        from confluent_kafka.admin import AdminClient
        self.create_topic("inventory", 4)
        self.produce("inventory", [str(i) for i in range(40)], partition_of=lambda i: i % 4)
        consumers = self.members(2, "g-admin", "inventory")
        try:
            def stable_with_two():
                self.poll_all(consumers, 0.5)
                g = self.describe("g-admin")
                return g is not None and g.state == "Stable" and len(g.members) == 2 and \
                    all(decode_assignment(m.assignment).get("inventory") for m in g.members)
            wait_until(stable_with_two, 60, "a Stable group of two members with assignments")
            g = self.describe("g-admin")
            self.assertEqual(g.protocol_type, "consumer")
            self.assertIn(g.protocol, ("range", "roundrobin"))
            parts = [decode_assignment(m.assignment)["inventory"] for m in g.members]
            self.assertEqual(sorted(parts[0] + parts[1]), [0, 1, 2, 3])
            self.assertEqual(sorted(m.client_id for m in g.members), ["member-0", "member-1"])
            for m in g.members:
                self.assertEqual(m.client_host, "/127.0.0.1")
                self.assertTrue(m.metadata, "member metadata (the subscription) is empty")
            listed = {x.id: x for x in AdminClient({"bootstrap.servers": self.bootstrap}).list_groups(timeout=10)}
            self.assertIn("g-admin", listed)
            self.assertFalse(any(name.startswith("__") for name in listed))

            for c in consumers:  # give every member something to commit
                c.consume(40, 1.0)
                c.commit(asynchronous=False)
            self.assertEqual(self.delete_groups(["g-admin"]), {"g-admin": NON_EMPTY_GROUP})
        finally:
            for c in consumers:
                c.close()
        g = wait_until(lambda: (lambda d: d if d and d.state == "Empty" else None)(self.describe("g-admin")), 30,
                       "the group to become Empty after both members left")
        self.assertEqual(g.members, [])
        self.assertEqual(self.delete_groups(["g-admin", "no-such-group"]),
                         {"g-admin": 0, "no-such-group": GROUP_ID_NOT_FOUND})
        self.assertIsNone(self.describe("g-admin"))
        # Deleting the group dropped its offsets, and stays so after a restart.
        self.assertEqual(self.committed("g-admin", "inventory", 4), {p: -1001 for p in range(4)})
        self.server.stop()
        self.server.start()
        self.assertEqual(self.committed("g-admin", "inventory", 4), {p: -1001 for p in range(4)})
        self.assertIsNone(self.describe("g-admin"))

    def committed(self, group, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
            for tp in got:
                self.assertIsNone(tp.error, tp)
            return {tp.partition: tp.offset for tp in got}
        finally:
            c.close()

    def test_offset_fetch_without_commits(self):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.admin import KafkaAdminClient
        self.create_topic("fresh", 2)
        # librdkafka: offset -1 on the wire is OFFSET_INVALID (-1001), with no error.
        self.assertEqual(self.committed("never-committed", "fresh", 2), {0: -1001, 1: -1001})
        kc = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id="never-committed")
        self.assertIsNone(kc.committed(TopicPartition("fresh", 0)))
        kc.close()
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            self.assertEqual(admin.list_consumer_group_offsets("never-committed"), {})
            # Asking does not create the group.
            self.assertNotIn("never-committed", [g for g, _ in admin.list_consumer_groups()])
        finally:
            admin.close()


if __name__ == "__main__":
    unittest.main()
