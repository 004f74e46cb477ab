"""GET /v1/groups and /v1/groups/<id> over HTTP (curl): members, committed offsets, lag."""

import json
import re
import subprocess
import unittest

from groups_harness import GroupTestCase


class HttpGroupsTest(GroupTestCase):

    def http_port(self):
        m = re.search(r"listening kafka=\S+ http=127\.0\.0\.1:(\d+)", self.server.log_text(whole=False))
        self.assertIsNotNone(m, "no http port in the listening line")
        return int(m.group(1))

    def curl(self, path, expect_status=200):
        r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"http://127.0.0.1:{self.http_port()}{path}"],
                           capture_output=True, timeout=30, check=True)
        body, _, status = r.stdout.decode().rpartition("\n")
        self.assertEqual(int(status), expect_status, body)
        return json.loads(body)

    def test_lag_of_a_group_that_committed_part_of_the_log(self):
        from confluent_kafka import Consumer, TopicPartition
        self.create_topic("orders", 2)
        self.produce("orders", [f"v{i}" for i in range(100)], partition_of=lambda i: i % 2)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "billing",
                             "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition("orders", 0, 30), TopicPartition("orders", 1, 50)],
                            asynchronous=False)
        finally:
            consumer.close()

        listing = self.curl("/v1/groups")
        groups = {g["group_id"]: g for g in listing["groups"]}
        self.assertIn("billing", groups)
        one = self.curl("/v1/groups/billing")
        self.assertEqual(one, groups["billing"])
        offsets = {(o["topic"], o["partition"]): o for o in one["offsets"]}
        self.assertEqual(offsets[("orders", 0)]["committed_offset"], 30)
        self.assertEqual(offsets[("orders", 0)]["log_end_offset"], 50)
        self.assertEqual(offsets[("orders", 0)]["lag"], 20)
        self.assertEqual(offsets[("orders", 1)]["lag"], 0)
        self.assertEqual(one["total_lag"], 20)
        self.assertEqual(one["state"], "Empty")

        metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{self.http_port()}/metrics"],
                                 capture_output=True, timeout=30, check=True).stdout.decode()
        self.assertIn('evert_group_lag{group="billing",topic="orders",partition="0"} 20\n', metrics)
        self.assertIn('evert_partition_high_watermark{topic="orders",partition="1"} 50\n', metrics)

        # More data raises the lag the API reports.
        self.produce("orders", ["late"] * 5, partition_of=lambda i: 1)
        self.assertEqual(self.curl("/v1/groups/billing")["total_lag"], 25)

    def test_unknown_group_is_404_with_a_message(self):
        body = self.curl("/v1/groups/nobody", expect_status=404)
        self.assertEqual(body["error"]["code"], "not_found")
        self.assertIn("nobody", body["error"]["message"])


if __name__ == "__main__":
    unittest.main()
