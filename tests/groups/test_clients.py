"""Consumer groups driven by clients we did not write: kcat -G, KafkaJS, kafka-python."""

import collections
import os
import signal
import subprocess
import threading
import time
import unittest

from groups_harness import NODE_MODULES, GroupTestCase, wait_until

KCAT = "/usr/bin/kcat"


def committed_offsets(bootstrap, group, topic, partitions):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


class KcatTest(GroupTestCase):

    def kcat_group(self, group, topic, *args, timeout_s=60):
        cmd = [KCAT, "-b", self.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
               "-X", "session.timeout.ms=6000", "-f", "%p %o %s\\n", *args, topic]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return [tuple(line.split(" ", 2)) for line in r.stdout.decode().splitlines() if line]

    def test_balanced_consumer_commits_and_resumes(self):
        self.create_topic("clicks", 3)
        delivered = self.produce("clicks", [f"v{i}" for i in range(90)], partition_of=lambda i: i % 3)
        first = self.kcat_group("g-kcat", "clicks", "-c", "60")
        self.assertEqual(len(first), 60)
        produced = {(str(p), str(o)): v for p, o, v in delivered}
        for p, o, v in first:
            self.assertEqual(produced[(p, o)], v)
        # kcat commits what it consumed when it closes; the next run resumes there.
        committed = committed_offsets(self.bootstrap, "g-kcat", "clicks", 3)
        self.assertEqual(sum(o for o in committed.values() if o >= 0), 60, committed)
        rest = self.kcat_group("g-kcat", "clicks", "-e")
        self.assertEqual(len(rest), 30)
        self.assertEqual(sorted(first + rest), sorted((p, o, v) for (p, o), v in produced.items()))
        self.assertEqual(committed_offsets(self.bootstrap, "g-kcat", "clicks", 3), {0: 30, 1: 30, 2: 30})
        self.assertEqual(self.kcat_group("g-kcat", "clicks", "-e"), [])


class KafkaJsTest(GroupTestCase):

    def spawn_member(self, name, group, topic):
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        return self.spawn(["node", "kafkajs_group.js", self.bootstrap, group, topic], name, env=env)

    @staticmethod
    def last_join(lines):
        for line in reversed(lines):
            if line.startswith("JOIN"):
                rest = line[len("JOIN"):].strip()
                return {int(x) for x in rest.split(",") if x}
        return None

    @staticmethod
    def records(lines):
        return [tuple(line.split(" ", 3)[1:]) for line in lines if line.startswith("REC ")]

    def test_second_member_joins_and_nothing_is_lost(self):
        self.create_topic("events", 4)
        first_batch = self.produce("events", [f"a{i}" for i in range(200)], partition_of=lambda i: i % 4)
        a_proc, a = self.spawn_member("kjs-a", "g-kjs", "events")
        a.wait_for(lambda lines: self.last_join(lines) == {0, 1, 2, 3}, 60, "all four partitions")
        a.wait_for(lambda lines: len(self.records(lines)) >= 200, 60, "the first 200 records")

        def committed_all(lines):  # KafkaJS commits after each batch
            last = {}
            for line in lines:
                if line.startswith("COMMIT "):
                    _, p, n = line.split(" ")
                    last[int(p)] = int(n)
            return last == {0: 50, 1: 50, 2: 50, 3: 50}
        a.wait_for(committed_all, 30, "commits up to the log end")

        b_proc, b = self.spawn_member("kjs-b", "g-kjs", "events")
        b.wait_for(lambda lines: self.last_join(lines), 60, "partitions for the second member")
        wait_until(lambda: (self.last_join(a.snapshot()) or set()) | (self.last_join(b.snapshot()) or set())
                   == {0, 1, 2, 3} and len(self.last_join(a.snapshot()) or ()) == 2, 60,
                   "two partitions each")
        self.assertEqual(self.last_join(a.snapshot()) & self.last_join(b.snapshot()), set())
        second_batch = self.produce("events", [f"b{i}" for i in range(200)], partition_of=lambda i: i % 4)

        everything = {(str(p), str(o)): v for p, o, v in first_batch + second_batch}
        wait_until(lambda: set(self.records(a.snapshot()) + self.records(b.snapshot())) >=
                   {(p, o, v) for (p, o), v in everything.items()}, 60, "every record consumed")
        for proc, reader, name in ((b_proc, b, "kjs-b"), (a_proc, a, "kjs-a")):
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0, self.child_stderr(name))
            reader.thread.join(timeout=10)
            self.assertIn("CLOSED", reader.snapshot())
            self.assertFalse([l for l in reader.snapshot() if l.startswith("CRASH")], self.child_stderr(name))
        got = self.records(a.snapshot()) + self.records(b.snapshot())
        dups = [r for r, n in collections.Counter(got).items() if n > 1]
        self.assertEqual(dups, [], "records consumed twice without any member failing")
        self.assertEqual(set(got), {(p, o, v) for (p, o), v in everything.items()})
        b_parts = {int(p) for p, _, v in self.records(b.snapshot())}
        self.assertTrue(b_parts and b_parts <= self.last_join(b.snapshot()))
        self.assertEqual(committed_offsets(self.bootstrap, "g-kjs", "events", 4), {0: 100, 1: 100, 2: 100, 3: 100})


class KafkaPythonTest(GroupTestCase):

    def consumer(self, group, **kw):
        from kafka import KafkaConsumer
        return KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500,
                             max_poll_records=10, request_timeout_ms=30000, **kw)

    def test_subscribe_commit_resume(self):
        from kafka import TopicPartition
        self.create_topic("kp", 3)
        delivered = self.produce("kp", [f"k{i}" for i in range(100)], partition_of=lambda i: i % 3)
        c = self.consumer("g-kp")
        c.subscribe(["kp"])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 40 and time.monotonic() < deadline:
            for tp, recs in c.poll(timeout_ms=500).items():
                got += [(tp.partition, r.offset, r.value.decode()) for r in recs]
        self.assertGreaterEqual(len(got), 40)
        self.assertEqual({tp.partition for tp in c.assignment()}, {0, 1, 2})
        c.commit()
        committed = {p: c.committed(TopicPartition("kp", p)) for p in range(3)}
        c.close()
        for p in range(3):
            mine = [o for q, o, _ in got if q == p]
            self.assertEqual(committed[p] or 0, max(mine) + 1 if mine else 0, committed)
        self.assertEqual(committed_offsets(self.bootstrap, "g-kp", "kp", 3), {p: -1001 if committed[p] is None else committed[p] for p in range(3)})

        c = self.consumer("g-kp")
        c.subscribe(["kp"])
        rest = []
        deadline = time.monotonic() + 60
        while len(got) + len(rest) < 100 and time.monotonic() < deadline:
            for tp, recs in c.poll(timeout_ms=500).items():
                rest += [(tp.partition, r.offset, r.value.decode()) for r in recs]
        c.commit()
        c.close()
        self.assertEqual(sorted(got + rest), sorted(delivered), "resumed exactly after the commit")
        self.assertEqual(committed_offsets(self.bootstrap, "g-kp", "kp", 3), {0: 34, 1: 33, 2: 33})

    def test_two_members_share_partitions(self):
        self.create_topic("kp2", 4)
        delivered = self.produce("kp2", [f"x{i}" for i in range(400)], partition_of=lambda i: i % 4)
        stop = threading.Event()
        results = {}

        def member(name):
            c = self.consumer("g-kp2", client_id=name)
            c.subscribe(["kp2"])
            got, owned = [], set()
            try:
                while not stop.is_set():
                    for tp, recs in c.poll(timeout_ms=200).items():
                        got += [(tp.partition, r.offset, r.value.decode()) for r in recs]
                    if got:
                        c.commit()
                    owned = {tp.partition for tp in c.assignment()}
                    results[name] = (got, owned)
            finally:
                c.close()
                results[name] = (got, owned)

        threads = [threading.Thread(target=member, args=(n,), daemon=True) for n in ("kp-a", "kp-b")]
        for t in threads:
            t.start()
            time.sleep(1)

        def settled():
            if len(results) < 2:
                return False
            owned = [results[n][1] for n in ("kp-a", "kp-b")]
            consumed = {r for n in results for r in results[n][0]}
            return all(len(o) == 2 for o in owned) and owned[0] | owned[1] == {0, 1, 2, 3} and \
                consumed >= set(delivered)
        try:
            wait_until(settled, 90, "two members with two partitions each and every record consumed")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        self.assertEqual(committed_offsets(self.bootstrap, "g-kp2", "kp2", 4), {0: 100, 1: 100, 2: 100, 3: 100})


if __name__ == "__main__":
    unittest.main()
