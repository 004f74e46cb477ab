"""A confluent-kafka group member, run as its own process by the tests.

    consumer_worker.py BOOTSTRAP GROUP TOPIC [key=value librdkafka overrides...]

Prints one line per event on stdout, flushed at once, so the parent sees
what happened up to the moment this process dies:
    ASSIGN p,p,...           partitions assigned (eager protocol: the full set)
    REVOKE p,p,...           partitions revoked
    REC p offset value       a record consumed
    COMMIT p next            a synchronous commit of `next` succeeded
    COMMITFAIL p next err    it failed (the records before `next` may come again)
    CLOSED                   close() returned (left the group cleanly)
Records are committed after every consume() batch, before the next one is
asked for. SIGTERM asks for a clean close.
"""

import signal
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

stopping = False


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    bootstrap, group, topic = sys.argv[1:4]
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 60000,
    }
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        conf[k] = v

    def on_term(signum, frame):
        global stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    c = Consumer(conf)
    c.subscribe([topic],
                on_assign=lambda _c, parts: out("ASSIGN " + ",".join(str(p.partition) for p in parts)),
                on_revoke=lambda _c, parts: out("REVOKE " + ",".join(str(p.partition) for p in parts)))
    while not stopping:
        msgs = c.consume(500, 0.2)
        nexts = {}
        for m in msgs:
            if m.error():
                continue
            out(f"REC {m.partition()} {m.offset()} {m.value().decode()}")
            nexts[m.partition()] = m.offset() + 1
        if not nexts:
            continue
        offsets = [TopicPartition(topic, p, n) for p, n in sorted(nexts.items())]
        try:
            result = c.commit(offsets=offsets, asynchronous=False)
            for tp in result:
                if tp.error:
                    out(f"COMMITFAIL {tp.partition} {tp.offset} {tp.error}")
                else:
                    out(f"COMMIT {tp.partition} {tp.offset}")
        except KafkaException as e:
            for tp in offsets:
                out(f"COMMITFAIL {tp.partition} {tp.offset} {e}")
    c.close()
    out("CLOSED")


if __name__ == "__main__":
    main()
