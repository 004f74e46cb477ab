"""Committed offsets and group state survive a restart of evert."""

import collections
import signal
import time
import unittest

from groups_harness import PYTHON, GroupTestCase, wait_until


class RestartTest(GroupTestCase):

    def test_commits_survive_and_a_new_member_resumes(self):
        from confluent_kafka import Consumer, TopicPartition
        from confluent_kafka.admin import AdminClient
        from kafka import KafkaConsumer
        from kafka.structs import OffsetAndMetadata
        from kafka import TopicPartition as KTopicPartition

        self.create_topic("ledger", 3)
        delivered = self.produce("ledger", [f"r{i}" for i in range(90)], partition_of=lambda i: i % 3)
        conf = {"bootstrap.servers": self.bootstrap, "group.id": "g-restart", "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
        c = Consumer(conf)
        c.subscribe(["ledger"])
        first = []
        deadline = time.monotonic() + 60
        while len(first) < 45 and time.monotonic() < deadline:
            for m in c.consume(5, 0.5):
                if not m.error():
                    first.append((m.partition(), m.offset(), m.value().decode()))
        self.assertGreaterEqual(len(first), 45)
        c.commit(asynchronous=False)
        tps = [TopicPartition("ledger", p) for p in range(3)]
        before = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
        c.close()
        expected = {p: max([o for q, o, _ in first if q == p], default=-1) + 1 for p in range(3)}
        self.assertEqual({p: o for p, o in before.items() if o >= 0}, {p: o for p, o in expected.items() if o > 0})

        # A commit from outside any generation (assign() + commit), with metadata.
        kc = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id="g-assigned", enable_auto_commit=False)
        ktp = KTopicPartition("ledger", 1)
        kc.assign([ktp])
        kc.commit({ktp: OffsetAndMetadata(7, "note: seven")})
        kc.close()

        self.server.stop()
        self.server.start()

        c = Consumer(dict(conf, **{"bootstrap.servers": self.bootstrap}))
        after = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
        self.assertEqual(after, before)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        groups = {g.id: g for g in admin.list_groups(timeout=10)}
        self.assertIn("g-restart", groups)
        self.assertEqual(groups["g-restart"].state, "Empty")
        self.assertEqual(groups["g-restart"].protocol_type, "consumer")

        c.subscribe(["ledger"])
        rest = []
        deadline = time.monotonic() + 60
        while len(first) + len(rest) < 90 and time.monotonic() < deadline:
            for m in c.consume(50, 0.5):
                if not m.error():
                    rest.append((m.partition(), m.offset(), m.value().decode()))
        # Nothing more than the remainder arrives.
        for m in c.consume(50, 1.0):
            if not m.error():
                rest.append((m.partition(), m.offset(), m.value().decode()))
        c.close()
        self.assertEqual(sorted(first + rest), sorted(delivered), "resumed exactly at the committed offsets")

        kc = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id="g-assigned", enable_auto_commit=False)
        self.assertEqual(kc.committed(ktp, metadata=True), OffsetAndMetadata(7, "note: seven"))
        kc.close()

    def test_live_member_keeps_its_generation_across_restart(self):
        self.create_topic("stream", 2)
        port = self.server.port
        proc, reader = self.spawn([PYTHON, "consumer_worker.py", self.bootstrap, "g-live", "stream",
                                   "session.timeout.ms=30000"], "live")
        reader.wait_for(lambda lines: any(l == "ASSIGN 0,1" for l in lines), 60, "assignment")
        first = self.produce("stream", [f"a{i}" for i in range(60)], partition_of=lambda i: i % 2)

        def recs():
            return [tuple(l.split(" ", 3)[1:]) for l in reader.snapshot() if l.startswith("REC ")]

        def committed_through(n):
            last = {}
            for l in reader.snapshot():
                if l.startswith("COMMIT "):
                    _, p, o = l.split(" ")
                    last[p] = int(o)
            return last == {"0": n, "1": n}
        wait_until(lambda: committed_through(30), 60, "first 60 consumed and committed")
        lines_before = len(reader.snapshot())

        self.server.stop()
        self.server.start(port=port)
        second = self.produce("stream", [f"b{i}" for i in range(60)], partition_of=lambda i: i % 2)
        wait_until(lambda: committed_through(60), 60, "the next 60 consumed and committed")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0, self.child_stderr("live"))
        reader.thread.join(timeout=10)

        got = recs()
        dups = [r for r, n in collections.Counter(got).items() if n > 1]
        self.assertEqual(dups, [])
        self.assertEqual(sorted(got), sorted((str(p), str(o), v) for p, o, v in first + second))
        # The member came back into the generation it had: no revocation, no rejoin.
        self.assertEqual([l for l in reader.snapshot()[lines_before:] if l.startswith(("REVOKE", "ASSIGN"))],
                         ["REVOKE 0,1"], "the member had to rejoin after the restart")


if __name__ == "__main__":
    unittest.main()
