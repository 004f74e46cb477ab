"""Rebalances stopped halfway, driven over the wire (group_wire.py): the
moments real clients pass through too quickly to test."""

import time
import unittest

from group_wire import GroupConnection
from groups_harness import GroupTestCase

NONE, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS = 0, 25, 27
GROUP = "g-wire"


class CoordinatorEdgesTest(GroupTestCase):

    def connect(self, name):
        conn = GroupConnection(self.server.port, client_id=name)
        self.addCleanup(conn.close)
        return conn

    def two_members_joined(self):
        """A leads generation 1 alone, then B joins: both get generation 2's join answer."""
        a, b = self.connect("a"), self.connect("b")
        ja = a.recv_join(a.send_join(GROUP, ""))
        self.assertEqual((ja["error"], ja["generation"], ja["leader"]), (NONE, 1, ja["member_id"]))
        a_id = ja["member_id"]
        self.assertEqual(a.recv_sync(a.send_sync(GROUP, 1, a_id, [(a_id, b"A1")])), {"error": NONE, "assignment": b"A1"})
        b_join = b.send_join(GROUP, "")
        deadline = time.monotonic() + 10  # B's join travels on its own connection
        while a.heartbeat(GROUP, 1, a_id) != REBALANCE_IN_PROGRESS:
            self.assertLess(time.monotonic(), deadline, "B's join never started a rebalance")
            time.sleep(0.05)
        ja = a.recv_join(a.send_join(GROUP, a_id))
        jb = b.recv_join(b_join)
        self.assertEqual((ja["error"], jb["error"]), (NONE, NONE))
        self.assertEqual((ja["generation"], jb["generation"]), (2, 2))
        self.assertEqual(jb["leader"], a_id)
        return a, a_id, b, jb["member_id"]

    def test_follower_waiting_in_sync_outlives_its_session_timeout(self):
        # The leader takes longer to assign than the follower's session timeout
        # (6 s) while heartbeating; the follower, parked in SyncGroup, cannot
        # heartbeat and must not be expired for it (as in Kafka).
        a, a_id, b, b_id = self.two_members_joined()
        b_sync = b.send_sync(GROUP, 2, b_id)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            self.assertEqual(a.heartbeat(GROUP, 2, a_id), NONE, "the leader was told to rejoin")
            time.sleep(1)
        ra = a.recv_sync(a.send_sync(GROUP, 2, a_id, [(a_id, b"A2"), (b_id, b"B2")]))
        self.assertEqual(ra, {"error": NONE, "assignment": b"A2"})
        self.assertEqual(b.recv_sync(b_sync), {"error": NONE, "assignment": b"B2"})
        self.assertEqual(b.heartbeat(GROUP, 2, b_id), NONE)

    def test_follower_survives_a_leader_that_dies_before_syncing(self):
        # The leader goes silent after joining. Its session expires; the follower
        # parked in SyncGroup is told to rejoin and is still a member when it does.
        a, a_id, b, b_id = self.two_members_joined()
        a.close()
        started = time.monotonic()
        rb = b.recv_sync(b.send_sync(GROUP, 2, b_id))
        self.assertEqual(rb["error"], REBALANCE_IN_PROGRESS)
        self.assertGreater(time.monotonic() - started, 4.0, "answered before the leader's session could expire")
        jb = b.recv_join(b.send_join(GROUP, b_id))
        self.assertEqual((jb["error"], jb["generation"], jb["leader"], jb["member_id"]), (NONE, 3, b_id, b_id))
        self.assertEqual([m for m, _ in jb["members"]], [b_id])
        self.assertEqual(b.recv_sync(b.send_sync(GROUP, 3, b_id, [(b_id, b"B3")])),
                         {"error": NONE, "assignment": b"B3"})

    def test_repeated_sync_is_answered_not_dropped(self):
        # A follower repeats its SyncGroup on the same connection while the first
        # is parked: each request gets an answer, in order, and the connection lives.
        a, a_id, b, b_id = self.two_members_joined()
        first = b.send_sync(GROUP, 2, b_id)
        second = b.send_sync(GROUP, 2, b_id)
        time.sleep(0.5)  # both parked before the leader's assignment arrives on its own connection
        self.assertEqual(a.recv_sync(a.send_sync(GROUP, 2, a_id, [(a_id, b"A2"), (b_id, b"B2")]))["error"], NONE)
        self.assertEqual(b.recv_sync(first)["error"], REBALANCE_IN_PROGRESS)
        self.assertEqual(b.recv_sync(second), {"error": NONE, "assignment": b"B2"})
        self.assertEqual(b.heartbeat(GROUP, 2, b_id), NONE)
        self.assertEqual(b.leave(GROUP, b_id), NONE)
        self.assertEqual(a.heartbeat(GROUP, 2, a_id), REBALANCE_IN_PROGRESS)


if __name__ == "__main__":
    unittest.main()
