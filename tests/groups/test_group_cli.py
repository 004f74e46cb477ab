"""`evert group list|describe|reset-offsets` against a running server."""

import os
import subprocess
import time
import unittest

from groups_harness import EVERT_BIN, GroupTestCase, wait_until


def parse_describe(text):
    """-> (header fields, {member: [partitions]}, {(topic, p): (committed, end, lag, member)}, total lag)."""
    lines = text.splitlines()
    head = lines[0].split()
    header = dict(zip(head[0::2], head[1::2]))
    members, partitions, total = {}, {}, None
    section = None
    for line in lines[1:]:
        f = line.split()
        if not f:
            continue
        if f[0] == "MEMBER":
            section = "members"
        elif f[0] == "TOPIC":
            section = "partitions"
        elif f[:2] == ["total", "lag"]:
            total = int(f[2])
        elif section == "members":
            members[f[0]] = f[3].split(",")
        elif section == "partitions":
            partitions[(f[0], int(f[1]))] = (f[2], int(f[3]), f[4], f[5])
    return header, members, partitions, total


class GroupCliTest(GroupTestCase):

    def evert(self, *args, expect=0, env=None):
        r = subprocess.run([EVERT_BIN, "group", *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                           env=env if env is not None else dict(os.environ, EVERT_BOOTSTRAP_SERVER=self.bootstrap))
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertEqual(r.returncode, expect, f"evert group {' '.join(args)}\nstdout:\n{out}\nstderr:\n{err}")
        return out, err

    def consumer(self, group):
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "client.id": "cli-test",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})

    def consume_and_commit(self, c, topic, at_least, positions):
        """Consumes until `at_least` records arrived, then commits what was consumed."""
        from confluent_kafka import TopicPartition
        got = 0
        deadline = time.monotonic() + 60
        while got < at_least:
            self.assertLess(time.monotonic(), deadline, f"only {got} of {at_least} records within 60 s")
            msgs = c.consume(min(at_least - got, 500), 1.0)
            for m in msgs:
                if m.error():
                    continue
                positions[m.partition()] = m.offset() + 1
                got += 1
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in positions.items()], asynchronous=False)
        return got

    def committed(self, group, topic, partitions):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            return {tp.partition: tp.offset for tp in
                    c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
        finally:
            c.close()

    def test_describe_shows_correct_lag_during_and_after(self):
        self.create_topic("metrics", 3)
        self.produce("metrics", [str(i) for i in range(90)], partition_of=lambda i: i % 3)
        out, _ = self.evert("list")
        self.assertEqual(out.split(), ["GROUP", "STATE"])

        c = self.consumer("g-cli")
        c.subscribe(["metrics"])
        positions = {}
        try:
            self.consume_and_commit(c, "metrics", 40, positions)
            # During: one live member that has committed part of the log.
            header, members, parts, total = parse_describe(self.evert("describe", "g-cli")[0])
            self.assertEqual(header["state"], "Stable")
            self.assertEqual(header["members"], "1")
            self.assertEqual(list(members.values()), [["metrics-0", "metrics-1", "metrics-2"]])
            member_id = list(members)[0]
            for p in range(3):
                committed = positions.get(p)
                want = (str(committed) if committed is not None else "-", 30,
                        str(30 - committed) if committed is not None else "-", member_id)
                self.assertEqual(parts[("metrics", p)], want)
            self.assertEqual(total, sum(30 - o for o in positions.values()))

            # More data arrives: the log end and the lag grow, the commits stay.
            self.produce("metrics", [str(i) for i in range(90, 120)], partition_of=lambda i: i % 3)
            header, members, parts, total = parse_describe(self.evert("describe", "g-cli")[0])
            for p, o in positions.items():
                self.assertEqual(parts[("metrics", p)][:3], (str(o), 40, str(40 - o)))
            self.assertEqual(total, sum(40 - o for o in positions.values()))

            self.consume_and_commit(c, "metrics", 120 - sum(positions.values()), positions)
            self.assertEqual(positions, {0: 40, 1: 40, 2: 40})
            header, members, parts, total = parse_describe(self.evert("describe", "g-cli")[0])
            self.assertEqual(header["state"], "Stable")
            self.assertEqual(total, 0)
            self.assertEqual({k: v[:3] for k, v in parts.items()},
                             {("metrics", p): ("40", 40, "0") for p in range(3)})
        finally:
            c.close()
        # After: no members, the commits and a zero lag remain.
        header, members, parts, total = parse_describe(self.evert("describe", "g-cli")[0])
        self.assertEqual((header["state"], header["members"]), ("Empty", "0"))
        self.assertEqual(members, {})
        self.assertEqual(parts, {("metrics", p): ("40", 40, "0", "-") for p in range(3)})
        self.assertEqual(total, 0)
        out, _ = self.evert("list")
        self.assertIn(["g-cli", "Empty"], [line.split() for line in out.splitlines()])

    def test_reset_offsets(self):
        self.create_topic("audit", 3)
        self.produce("audit", [str(i) for i in range(60)], partition_of=lambda i: i % 3)
        c = self.consumer("g-reset")
        c.subscribe(["audit"])
        positions = {}
        try:
            self.consume_and_commit(c, "audit", 60, positions)
            _, err = self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-earliest", "--execute",
                                expect=1)
            self.assertIn("active", err)
            self.assertEqual(self.committed("g-reset", "audit", 3), {0: 20, 1: 20, 2: 20})
        finally:
            c.close()
        wait_until(lambda: "state Empty" in self.evert("describe", "g-reset")[0], 30, "an Empty group")

        out, _ = self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-earliest")
        self.assertIn("dry run", out)
        rows = [l.split() for l in out.splitlines()[1:4]]
        self.assertEqual(rows, [["audit", str(p), "20", "0"] for p in range(3)])
        self.assertEqual(self.committed("g-reset", "audit", 3), {0: 20, 1: 20, 2: 20})

        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-earliest", "--execute")
        self.assertEqual(self.committed("g-reset", "audit", 3), {0: 0, 1: 0, 2: 0})
        _, _, parts, total = parse_describe(self.evert("describe", "g-reset")[0])
        self.assertEqual(total, 60)
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-offset", "5", "--execute")
        self.assertEqual(self.committed("g-reset", "audit", 3), {0: 5, 1: 5, 2: 5})
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-offset", "1000", "--execute")
        self.assertEqual(self.committed("g-reset", "audit", 3), {0: 20, 1: 20, 2: 20})
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-offset", "7", "--execute")
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-latest", "--execute")
        self.assertEqual(self.committed("g-reset", "audit", 3), {0: 20, 1: 20, 2: 20})

        # A consumer of the group starts where the reset put it.
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-offset", "18", "--execute")
        c = self.consumer("g-reset")
        c.subscribe(["audit"])
        try:
            got = set()

            def six_records():
                got.update((m.partition(), m.offset()) for m in c.consume(100, 0.5) if not m.error())
                return len(got) >= 6
            wait_until(six_records, 30, "the six records after 18")
            self.assertEqual(got, {(p, o) for p in range(3) for o in (18, 19)})
        finally:
            c.close()

        # A group nobody used yet may be given offsets too.
        self.evert("reset-offsets", "g-new", "--topic", "audit", "--to-offset", "3", "--execute")
        self.assertEqual(self.committed("g-new", "audit", 3), {0: 3, 1: 3, 2: 3})

        _, err = self.evert("reset-offsets", "g-reset", "--topic", "audit", expect=2)
        self.assertIn("exactly one", err)
        self.evert("reset-offsets", "g-reset", "--topic", "audit", "--to-latest", "--to-earliest", expect=2)
        _, err = self.evert("reset-offsets", "g-reset", "--topic", "no-such-topic", "--to-latest", expect=1)
        self.assertIn("no-such-topic", err)

    def test_errors(self):
        _, err = self.evert("describe", "nobody", expect=1)
        self.assertIn("does not exist", err)
        # --bootstrap-server wins over the environment; a dead address fails fast with one line.
        _, err = self.evert("list", "--bootstrap-server", "127.0.0.1:1", expect=1)
        self.assertIn("127.0.0.1:1", err)
        out, _ = self.evert("list", "--bootstrap-server", self.bootstrap,
                            env=dict(os.environ, EVERT_BOOTSTRAP_SERVER="127.0.0.1:1"))
        self.assertEqual(out.split(), ["GROUP", "STATE"])


if __name__ == "__main__":
    unittest.main()
