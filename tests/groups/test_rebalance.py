"""Three librdkafka group members in separate processes, while a producer writes.

One member leaves cleanly, another is SIGKILLed. The group must rebalance so
the survivor owns all six partitions, every record must be consumed, and a
record may be consumed twice only when its first consumer never committed
past it: the killed member's tail after its last commit, or a batch whose
commit was refused during a rebalance.
"""

import collections
import signal
import threading
import time
import unittest

from groups_harness import PYTHON, GroupTestCase, wait_until

TOPIC = "orders"
GROUP = "billing"
PARTITIONS = 6


class Producer(threading.Thread):
    """Writes "seq" to partition seq % 6 at a steady rate until stopped."""

    def __init__(self, bootstrap, rate_per_s=300):
        super().__init__(name="producer", daemon=True)
        from confluent_kafka import Producer as KProducer
        self.p = KProducer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.rate = rate_per_s
        self.delivered = []
        self.errors = []
        self.stop_flag = threading.Event()
        self.sent = 0

    def _on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.delivered.append((msg.partition(), msg.offset(), msg.value().decode()))

    def run(self):
        start = time.monotonic()
        while not self.stop_flag.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                self.p.produce(TOPIC, value=str(self.sent).encode(), partition=self.sent % PARTITIONS,
                               on_delivery=self._on_delivery)
                self.sent += 1
            self.p.poll(0.01)
        self.p.flush(60)


def parse_parts(text):
    return {int(x) for x in text.split(",") if x != ""}


def consumptions(lines):
    """[(partition, offset, value, covered)] for one member's output.

    `covered`: the member committed past the record before it lost the
    partition (or exited), so no other member may consume it again.
    """
    events = []
    best = collections.defaultdict(lambda: -1)  # partition -> max commit seen later, before a revoke
    for line in reversed(lines):
        f = line.split(" ", 3)
        if f[0] == "REVOKE":
            for p in parse_parts(f[1] if len(f) > 1 else ""):
                best[p] = -1
        elif f[0] == "COMMIT":
            p, n = int(f[1]), int(f[2])
            best[p] = max(best[p], n)
        elif f[0] == "REC":
            p, o = int(f[1]), int(f[2])
            events.append((p, o, f[3], best[p] > o))
    events.reverse()
    return events


def failed_commits(lines):
    """{partition: [next offsets whose commit failed]}."""
    out = collections.defaultdict(list)
    for line in lines:
        f = line.split(" ")
        if f[0] == "COMMITFAIL":
            out[int(f[1])].append(int(f[2]))
    return out


def last_assignment(lines):
    for line in reversed(lines):
        if line.startswith("ASSIGN"):
            return parse_parts(line[len("ASSIGN "):])
        if line.startswith("REVOKE"):
            return set()
    return set()


class RebalanceTest(GroupTestCase):

    def test_three_members_one_leaves_one_killed(self):
        self.create_topic(TOPIC, PARTITIONS)
        producer = Producer(self.bootstrap)
        producer.start()
        self.addCleanup(producer.stop_flag.set)

        members = {}
        for name in ("m1", "m2", "m3"):
            members[name] = self.spawn([PYTHON, "consumer_worker.py", self.bootstrap, GROUP, TOPIC], name)

        def sizes():
            return sorted(len(last_assignment(r.snapshot())) for _, r in members.values())

        wait_until(lambda: sizes() == [2, 2, 2], 60, "three members with two partitions each")
        time.sleep(2)

        # m1 leaves cleanly: it commits what it consumed, so nothing of it may come again.
        proc, reader = members["m1"]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0, self.child_stderr("m1"))
        reader.thread.join(timeout=10)
        self.assertEqual(reader.snapshot()[-1], "CLOSED")
        wait_until(lambda: sorted(len(last_assignment(members[n][1].snapshot())) for n in ("m2", "m3")) == [3, 3],
                   60, "two members with three partitions each")
        time.sleep(2)

        # m2 dies without a word: evert must notice by the session timeout (6 s).
        proc, reader = members["m2"]
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        reader.thread.join(timeout=10)
        members["m3"][1].wait_for(lambda lines: last_assignment(lines) == set(range(PARTITIONS)), 60,
                                  "assignment of all six partitions")
        takeover_s = time.monotonic() - killed_at
        time.sleep(1)

        producer.stop_flag.set()
        producer.join(timeout=90)
        self.assertFalse(producer.is_alive(), "producer did not finish")
        self.assertEqual(producer.errors, [])
        self.assertEqual(len(producer.delivered), producer.sent)
        produced = {(p, o): v for p, o, v in producer.delivered}

        def all_consumed():
            seen = set()
            for _, r in members.values():
                for p, o, _, _ in consumptions(r.snapshot()):
                    seen.add((p, o))
            return set(produced) <= seen
        wait_until(all_consumed, 60, "every produced record consumed")

        proc, reader = members["m3"]
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0, self.child_stderr("m3"))
        reader.thread.join(timeout=10)
        self.assertEqual(reader.snapshot()[-1], "CLOSED")

        self.check_history({n: r.snapshot() for n, (_, r) in members.items()}, produced, killed="m2")
        # The committed offsets end at the log end: nothing left for the next member.
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP})
        committed = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=10)
        c.close()
        ends = collections.Counter(p for p, _ in produced)
        self.assertEqual({tp.partition: tp.offset for tp in committed}, dict(ends))
        print(f"\n  {len(produced)} records, takeover after kill {takeover_s:.1f} s", flush=True)

    def check_history(self, outputs, produced, killed):
        by_record = collections.defaultdict(list)  # (p, o) -> [(member, covered)]
        for name, lines in outputs.items():
            fails = failed_commits(lines)
            last = {}
            for line in lines:  # within one assignment, a member reads each partition in order, once
                if line.startswith("ASSIGN"):
                    last = {}
                elif line.startswith("REC"):
                    _, p, o, _ = line.split(" ", 3)
                    p, o = int(p), int(o)
                    self.assertGreater(o, last.get(p, -1), f"{name} went backwards or repeated on {p}: {o}")
                    last[p] = o
            for p, o, v, covered in consumptions(lines):
                self.assertIn((p, o), produced, f"{name} consumed a record nobody produced: {p}/{o}")
                self.assertEqual(produced[(p, o)], v, f"{name}: wrong value at {p}/{o}")
                if not covered and name != killed:
                    # A live member leaves a record uncommitted only when a commit failed.
                    self.assertTrue(any(n > o for n in fails.get(p, [])),
                                    f"{name} left {p}/{o} uncommitted without a failed commit")
                by_record[(p, o)].append((name, covered))
        missing = sorted(set(produced) - set(by_record))
        self.assertEqual(missing, [], f"{len(missing)} record(s) never consumed")
        dups = {k: v for k, v in by_record.items() if len(v) > 1}
        for key, events in dups.items():
            covered = [n for n, c in events if c]
            self.assertLessEqual(len(covered), 1, f"{key} consumed again after a commit past it: {events}")
        killed_dups = sum(1 for ev in dups.values() if any(n == killed and not c for n, c in ev))
        print(f"\n  duplicates: {len(dups)} ({killed_dups} in the killed member's uncommitted tail)", flush=True)


if __name__ == "__main__":
    unittest.main()
