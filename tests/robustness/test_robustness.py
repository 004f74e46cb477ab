#!/usr/bin/python3
"""Black-box robustness tests: evert fed malformed and hostile Kafka traffic.

Every test starts its own evert (see evert_server.py) and talks to it over
raw sockets with the tiny encoder in kafka_wire.py. After each bad input the
server must have answered with the right error or closed that connection,
still be running, and still serve a fresh connection (ApiVersions, Metadata,
produce and fetch). At the end of each test the server must stop cleanly on
SIGTERM with exit code 0 (a sanitizer report makes it exit non-zero).

Run: EVERT_BIN=build/evert /usr/bin/python3 tests/robustness/test_robustness.py -v
"""

import os
import random
import re
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kafka_wire as kw  # noqa: E402
from evert_server import EvertServer  # noqa: E402

# How much a hostile request may grow the server's resident memory.
RSS_GROWTH_MAX_KIB = 48 * 1024
CLOSE_TIMEOUT_S = 10.0


class ServerTestCase(unittest.TestCase):
    server_args = ()

    def setUp(self):
        self.server = EvertServer(self.server_args)
        self.next_correlation_id = 1000
        self.addCleanup(self.server.cleanup)

    def tearDown(self):
        self.assertTrue(self.server.alive(), "evert died:\n" + self.server.log()[-4000:])
        code, seconds = self.server.stop()
        log = self.server.log()
        self.assertEqual(code, 0, f"evert did not stop cleanly (exit {code}, {seconds:.1f}s):\n{log[-4000:]}")
        for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "check failed", "CHECK failed"):
            self.assertNotIn(marker, log, log[-4000:])

    # ------------------------------------------------------------ helpers

    def corr(self):
        self.next_correlation_id += 1
        return self.next_correlation_id

    def connect(self):
        s = kw.connect(self.server.port)
        self.addCleanup(s.close)
        return s

    def roundtrip(self, sock, api_key, version, body=b"", flexible=False):
        c = self.corr()
        sock.sendall(kw.request(api_key, version, c, body, flexible=flexible))
        got, payload = kw.recv_frame(sock)
        self.assertEqual(got, c, "correlation id echoed")
        return payload

    def create_topic(self, name):
        """Auto-creates `name` through Metadata v1 and waits for it."""
        with kw.connect(self.server.port) as s:
            for _ in range(50):
                md = kw.parse_metadata_v1(self.roundtrip(s, kw.API_METADATA, 1, kw.metadata_body([name])))
                topic = md["topics"][0]
                if topic["error"] == 0 and topic["partitions"]:
                    return
                time.sleep(0.05)
        self.fail(f"topic {name} was not created")

    def produce(self, sock, topic, records, version=7, acks=1, **kwargs):
        payload = self.roundtrip(sock, kw.API_PRODUCE, version, kw.produce_body(topic, 0, records, acks=acks, **kwargs))
        return kw.parse_produce(payload, version)

    def expect_closed(self, sock, what):
        """The server must close `sock`; returns the frames it sent first."""
        try:
            return kw.wait_closed(sock, CLOSE_TIMEOUT_S)
        except socket.timeout:
            self.fail(f"{what}: the connection stayed open")

    def expect_error_then_close(self, sock, correlation_id, what):
        """Either closed silently (as Kafka does) or answered UNSUPPORTED_VERSION then closed."""
        frames = self.expect_closed(sock, what)
        self.assertLessEqual(len(frames), 1, what)
        if frames:
            self.assertEqual(frames[0], (correlation_id, kw.i16(kw.ERR_UNSUPPORTED_VERSION)), what)

    def send_and_expect_closed(self, data, what, half_close=False):
        s = self.connect()
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            return []  # closed while we were still sending (EPIPE, ECONNRESET, ENOTCONN): fine
        return self.expect_closed(s, what)

    def check_healthy(self, topic="health"):
        """A fresh connection gets correct answers and can produce and fetch."""
        self.assertTrue(self.server.alive(), "evert died:\n" + self.server.log()[-4000:])
        with kw.connect(self.server.port) as s:
            error, keys = kw.parse_api_versions(self.roundtrip(s, kw.API_API_VERSIONS, 0), 0)
            self.assertEqual(error, 0)
            self.assertEqual(keys.get(kw.API_API_VERSIONS), (0, 3))
            self.assertIn(kw.API_PRODUCE, keys)
            self.assertIn(kw.API_FETCH, keys)
            md = kw.parse_metadata_v1(self.roundtrip(s, kw.API_METADATA, 1, kw.metadata_body([topic])))
            self.assertEqual(md["brokers"][0][2], self.server.port)
            self.assertEqual(md["topics"][0]["name"], topic)
            if md["topics"][0]["error"] != 0:
                self.create_topic(topic)
            value = f"alive-{self.corr()}".encode()
            [(_, _, error, base)] = self.produce(s, topic, kw.record_batch([value]))
            self.assertEqual(error, 0)
            fetched = kw.parse_fetch_v4(self.roundtrip(s, kw.API_FETCH, 4, kw.fetch_v4_body(topic, 0, base)))
            [(_, _, error, hw, records)] = fetched
            self.assertEqual(error, 0)
            self.assertEqual(hw, base + 1)
            self.assertIn(value, records)


# ====================================================================== framing

class FramingTest(ServerTestCase):
    server_args = ("--max-request-bytes", str(1 << 20))

    def test_frame_larger_than_the_limit_closes_without_allocating(self):
        rss_before = self.server.rss_kib()
        for size in ((1 << 20) + 1, 1 << 30, 0x7FFFFFFF):
            s = self.connect()
            s.sendall(kw.i32(size) + b"\0" * 4096)
            self.expect_closed(s, f"frame of {size} bytes")
            self.assertLess(self.server.rss_kib() - rss_before, RSS_GROWTH_MAX_KIB, f"frame of {size} bytes")
        self.check_healthy()

    def test_frame_at_the_limit_is_read(self):
        # A Metadata request padded to exactly the limit: the trailing bytes
        # are not part of the message, so it is answered or closed, never hung.
        c = self.corr()
        req = kw.request(kw.API_METADATA, 1, c, kw.metadata_body(None))
        payload = req[4:] + b"\0" * ((1 << 20) - (len(req) - 4))
        s = self.connect()
        s.sendall(kw.frame(payload))
        s.settimeout(CLOSE_TIMEOUT_S)
        got, _ = kw.recv_frame(s)  # trailing bytes after a body are ignored, like Kafka
        self.assertEqual(got, c)
        self.check_healthy()

    def test_negative_and_zero_frame_sizes(self):
        for size in (-1, -2, -(1 << 31), 0):
            frames = self.send_and_expect_closed(kw.i32(size) + b"\0" * 16, f"frame size {size}")
            self.assertEqual(frames, [], f"frame size {size}")
            self.check_healthy()

    def test_declared_size_larger_than_sent_then_half_close(self):
        body = kw.request(kw.API_API_VERSIONS, 0, self.corr())[4:]
        frames = self.send_and_expect_closed(kw.frame(body, size=len(body) + 100), "short frame", half_close=True)
        self.assertEqual(frames, [])
        # Half-closing after a complete request: the answer still arrives.
        c = self.corr()
        s = self.connect()
        s.sendall(kw.request(kw.API_API_VERSIONS, 0, c))
        s.shutdown(socket.SHUT_WR)
        frames = self.expect_closed(s, "complete request then half close")
        self.assertEqual([f[0] for f in frames], [c])
        self.check_healthy()

    def test_truncated_request_header(self):
        full = kw.request(kw.API_METADATA, 1, self.corr(), kw.metadata_body(None))[4:]
        for n in range(1, 8):
            frames = self.send_and_expect_closed(kw.frame(full[:n]), f"{n}-byte header")
            self.assertEqual(frames, [], f"{n}-byte header")
        # 8 bytes: a whole v0 header, but v1 needs a client id.
        frames = self.send_and_expect_closed(kw.frame(full[:8]), "header without client id")
        self.assertEqual(frames, [])
        # A client id longer than the frame.
        frames = self.send_and_expect_closed(kw.frame(full[:8] + kw.i16(300) + b"abc"), "lying client id")
        self.assertEqual(frames, [])
        self.check_healthy()

    def test_garbage_bytes(self):
        rng = random.Random(20240611)
        rss_before = self.server.rss_kib()
        samples = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64]
        samples += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 8192))) for _ in range(20)]
        # Garbage inside a well-formed frame of a plausible size.
        samples += [kw.frame(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 2048)))) for _ in range(20)]
        for i, data in enumerate(samples):
            self.send_and_expect_closed(data, f"garbage sample {i}", half_close=True)
            self.assertTrue(self.server.alive(), f"garbage sample {i}")
        self.assertLess(self.server.rss_kib() - rss_before, RSS_GROWTH_MAX_KIB)
        self.check_healthy()


class LargeDeclaredFramesTest(ServerTestCase):
    # The default limit (100 MiB): a frame that is allowed but never sent.
    server_args = ()

    def test_declared_but_unsent_frames_do_not_reserve_memory(self):
        rss_before = self.server.rss_kib()
        socks = []
        for _ in range(4):
            s = self.connect()
            s.sendall(kw.i32((100 << 20) - 1) + b"\0" * 1024)
            socks.append(s)
        time.sleep(0.5)
        growth = self.server.rss_kib() - rss_before
        self.assertLess(growth, RSS_GROWTH_MAX_KIB,
                        f"4 connections that sent 1 KiB each grew RSS by {growth} KiB")
        for s in socks:
            s.shutdown(socket.SHUT_WR)
            self.expect_closed(s, "unfinished large frame")
        self.check_healthy()

    def test_a_large_frame_sent_slowly_is_assembled(self):
        # 8 MiB of Metadata padding in pieces: correct even when the buffer grows.
        c = self.corr()
        req = kw.request(kw.API_METADATA, 1, c, kw.metadata_body(None))
        payload = req[4:] + b"\0" * (8 << 20)
        data = kw.frame(payload)
        s = self.connect()
        for i in range(0, len(data), 1 << 20):
            s.sendall(data[i:i + (1 << 20)])
            time.sleep(0.01)
        got, body = kw.recv_frame(s)
        self.assertEqual(got, c)
        kw.parse_metadata_v1(body)
        self.check_healthy()


# ====================================================================== versions

class VersionTest(ServerTestCase):
    def test_unknown_api_key(self):
        for key in (999, 32767, -1, 17):  # 17 = SaslHandshake: a real api evert does not serve
            s = self.connect()
            c = self.corr()
            s.sendall(kw.request(key, 0, c))
            self.expect_error_then_close(s, c, f"api key {key}")
            self.check_healthy()

    def test_known_api_unsupported_version(self):
        for key, version in ((kw.API_PRODUCE, 0), (kw.API_PRODUCE, 8), (kw.API_FETCH, 99), (kw.API_FETCH, 3),
                             (kw.API_METADATA, 7), (kw.API_METADATA, -1)):
            s = self.connect()
            c = self.corr()
            s.sendall(kw.request(key, version, c, b"\0" * 32))
            self.expect_error_then_close(s, c, f"api {key} v{version}")
            self.check_healthy()

    def test_api_versions_above_our_max_gets_a_v0_answer(self):
        for version in (4, 99, 32767, -1):
            s = self.connect()
            s.settimeout(CLOSE_TIMEOUT_S)
            c = self.corr()
            # A flexible-looking request (as a newer client would send).
            s.sendall(kw.request(kw.API_API_VERSIONS, version, c, kw.api_versions_v3_body(), flexible=True))
            got, body = kw.recv_frame(s)
            self.assertEqual(got, c)
            error, keys = kw.parse_api_versions(body, 0)  # v0 layout, header v0
            self.assertEqual(error, kw.ERR_UNSUPPORTED_VERSION, f"v{version}")
            self.assertEqual(keys, {kw.API_API_VERSIONS: (0, 3)}, f"v{version}")
            # The connection stays usable: the client retries with v3 on it.
            error, keys = kw.parse_api_versions(
                self.roundtrip(s, kw.API_API_VERSIONS, 3, kw.api_versions_v3_body(), flexible=True), 3)
            self.assertEqual(error, 0)
            self.assertEqual(keys[kw.API_API_VERSIONS], (0, 3))
        self.check_healthy()

    def test_librdkafka_opening_request(self):
        # kafka-protocol.md section 3, byte for byte.
        s = self.connect()
        s.settimeout(CLOSE_TIMEOUT_S)
        body = (kw.i16(18) + kw.i16(3) + kw.i32(7) + kw.string("rdkafka") + b"\x00"
                + b"\x0b" + b"librdkafka" + b"\x06" + b"2.0.2" + b"\x00")
        s.sendall(kw.frame(body))
        got, payload = kw.recv_frame(s)
        self.assertEqual(got, 7)
        # Header v0: the body starts right after the correlation id.
        self.assertEqual(payload[:2], b"\x00\x00")
        error, keys = kw.parse_api_versions(payload, 3)
        self.assertEqual(error, 0)
        self.assertEqual(payload[2], len(keys) + 1)
        self.assertEqual(payload[-5:], b"\x00\x00\x00\x00\x00")  # throttle 0, empty tags
        # Produce v0-2 are advertised but refused (test_known_api_unsupported_version):
        # librdkafka < 2.10 compresses nothing but zstd otherwise (KAFKA-18659).
        self.assertEqual(keys[kw.API_PRODUCE], (0, 7))
        self.assertEqual(keys[kw.API_FETCH], (4, 11))


# ====================================================================== lying lengths

class LyingLengthsTest(ServerTestCase):
    def lying_request_closes(self, api_key, version, body, what, flexible=False):
        rss_before = self.server.rss_kib()
        c = self.corr()
        frames = self.send_and_expect_closed(kw.request(api_key, version, c, body, flexible=flexible), what)
        self.assertEqual(frames, [], f"{what}: a malformed body is not answered")
        self.assertLess(self.server.rss_kib() - rss_before, RSS_GROWTH_MAX_KIB, what)
        self.check_healthy()

    def test_string_length_beyond_the_frame(self):
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(1) + kw.i16(30000) + b"abc", "topic name of 30000")
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(1) + kw.i16(32767), "topic name of 32767, no bytes")

    def test_array_count_of_two_billion(self):
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(2_000_000_000) + b"\0" * 16, "metadata topics")
        self.lying_request_closes(kw.API_PRODUCE, 7, kw.string(None) + kw.i16(1) + kw.i32(1000) + kw.i32(1)
                                  + kw.string("t") + kw.i32(2_000_000_000) + b"\0" * 16, "produce partitions")
        self.lying_request_closes(kw.API_FETCH, 4, kw.i32(-1) + kw.i32(0) + kw.i32(0) + kw.i32(0) + kw.i8(0)
                                  + kw.i32(2_000_000_000), "fetch topics")
        self.lying_request_closes(kw.API_API_VERSIONS, 3, kw.uvarint(2_000_000_000) + b"x" * 16, "compact string",
                                  flexible=True)

    def test_negative_lengths_other_than_minus_one(self):
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(-7), "array count -7")
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(-(1 << 31)), "array count INT32_MIN")
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(1) + kw.i16(-5) + b"abcdef", "string length -5")
        self.lying_request_closes(kw.API_METADATA, 1, kw.i32(1) + kw.i16(-1), "null topic name")
        self.lying_request_closes(kw.API_PRODUCE, 7, kw.produce_body("t", 0, b"x" * 70, records_length=-9),
                                  "records length -9")

    def test_records_length_beyond_the_frame(self):
        self.create_topic("lies")
        batch = kw.record_batch([b"v"])
        self.lying_request_closes(kw.API_PRODUCE, 7,
                                  kw.produce_body("lies", 0, batch, records_length=len(batch) + 1000),
                                  "records longer than the frame")
        self.lying_request_closes(kw.API_PRODUCE, 7,
                                  kw.produce_body("lies", 0, batch, records_length=0x7FFFFFFF),
                                  "records of 2 GiB")

    def test_trailing_tag_buffer_lies(self):
        # ApiVersions v3: a tag claiming more bytes than the frame holds.
        body = kw.compact_string("n") + kw.compact_string("v") + kw.uvarint(1) + kw.uvarint(0) + kw.uvarint(1000)
        self.lying_request_closes(kw.API_API_VERSIONS, 3, body, "tag size 1000", flexible=True)
        body = kw.compact_string("n") + kw.compact_string("v") + kw.uvarint(1 << 40)
        self.lying_request_closes(kw.API_API_VERSIONS, 3, body, "tag count 2^40", flexible=True)


# ====================================================================== produce / fetch errors

class ProduceFetchErrorsTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.create_topic("t")
        self.sock = self.connect()

    def test_bad_crc_is_corrupt_message(self):
        batch = bytearray(kw.record_batch([b"hello"]))
        batch[-1] ^= 0x01  # inside the records: covered by the CRC
        [(_, _, error, base)] = self.produce(self.sock, "t", bytes(batch))
        self.assertEqual(error, kw.ERR_CORRUPT_MESSAGE)
        self.assertEqual(base, -1)
        # The connection stays usable and nothing was appended.
        [(_, _, error, base)] = self.produce(self.sock, "t", kw.record_batch([b"good"]))
        self.assertEqual((error, base), (0, 0))
        self.check_healthy()

    def test_magic_1_batch_is_refused(self):
        # evert stores only magic 2 and answers UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
        message_set = kw.legacy_message_set_v1(b"x" * 64)
        self.assertGreaterEqual(len(message_set), 61)
        [(_, _, error, base)] = self.produce(self.sock, "t", message_set, version=3)
        self.assertEqual(error, kw.ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT)
        self.assertEqual(base, -1)
        # A v2 batch whose magic byte says 1 is refused the same way.
        batch = bytearray(kw.record_batch([b"v"]))
        batch[16] = 1
        [(_, _, error, _)] = self.produce(self.sock, "t", bytes(batch))
        self.assertEqual(error, kw.ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT)
        self.check_healthy()

    def test_records_shorter_than_their_batch(self):
        batch = kw.record_batch([b"a" * 100])
        for cut in (1, 12, 61, len(batch) - 1):
            [(_, _, error, _)] = self.produce(self.sock, "t", batch[:cut])
            self.assertEqual(error, kw.ERR_CORRUPT_MESSAGE, f"batch cut to {cut} bytes")
        # Batch length field larger than the records bytes.
        lying = bytearray(batch)
        lying[8:12] = kw.i32(len(batch) + 500)
        [(_, _, error, _)] = self.produce(self.sock, "t", bytes(lying))
        self.assertEqual(error, kw.ERR_CORRUPT_MESSAGE)
        # A good batch followed by junk.
        [(_, _, error, _)] = self.produce(self.sock, "t", batch + b"\0" * 7)
        self.assertEqual(error, kw.ERR_CORRUPT_MESSAGE)
        # Empty and null records.
        for records in (b"", None):
            [(_, _, error, _)] = self.produce(self.sock, "t", records)
            self.assertEqual(error, kw.ERR_INVALID_RECORD, repr(records))
        self.check_healthy()

    def test_acks_5_is_invalid_required_acks(self):
        for acks in (5, 2, -2):
            [(_, _, error, base)] = self.produce(self.sock, "t", kw.record_batch([b"v"]), acks=acks)
            self.assertEqual(error, kw.ERR_INVALID_REQUIRED_ACKS, f"acks={acks}")
            self.assertEqual(base, -1)
        fetched = kw.parse_fetch_v4(self.roundtrip(self.sock, kw.API_FETCH, 4, kw.fetch_v4_body("t", 0, 0)))
        self.assertEqual(fetched[0][3], 0, "nothing appended by refused produces")
        self.check_healthy()

    def test_produce_to_unknown_topic_or_partition(self):
        [(_, _, error, _)] = self.produce(self.sock, "no-such-topic", kw.record_batch([b"v"]))
        self.assertEqual(error, kw.ERR_UNKNOWN_TOPIC_OR_PARTITION)
        payload = self.roundtrip(self.sock, kw.API_PRODUCE, 7,
                                 kw.string(None) + kw.i16(1) + kw.i32(1000)
                                 + kw.array([kw.string("t") + kw.array([kw.i32(7) + kw.nbytes(kw.record_batch([b"v"]))])]))
        [(_, partition, error, _)] = kw.parse_produce(payload, 7)
        self.assertEqual((partition, error), (7, kw.ERR_UNKNOWN_TOPIC_OR_PARTITION))
        self.check_healthy()

    def test_fetch_unknown_topic(self):
        fetched = kw.parse_fetch_v4(self.roundtrip(self.sock, kw.API_FETCH, 4, kw.fetch_v4_body("nope", 0, 0)))
        [(topic, _, error, _, _)] = fetched
        self.assertEqual((topic, error), ("nope", kw.ERR_UNKNOWN_TOPIC_OR_PARTITION))
        # Even a long-polling fetch answers at once.
        start = time.monotonic()
        fetched = kw.parse_fetch_v4(self.roundtrip(
            self.sock, kw.API_FETCH, 4, kw.fetch_v4_body("nope", 0, 0, max_wait_ms=5000, min_bytes=1)))
        self.assertEqual(fetched[0][2], kw.ERR_UNKNOWN_TOPIC_OR_PARTITION)
        self.assertLess(time.monotonic() - start, 4.0)
        self.check_healthy()

    def test_fetch_out_of_range_offset(self):
        [(_, _, error, _)] = self.produce(self.sock, "t", kw.record_batch([b"a", b"b"]))
        self.assertEqual(error, 0)
        for offset in (3, 1000, 1 << 62, -5):
            fetched = kw.parse_fetch_v4(self.roundtrip(self.sock, kw.API_FETCH, 4, kw.fetch_v4_body("t", 0, offset)))
            self.assertEqual(fetched[0][2], kw.ERR_OFFSET_OUT_OF_RANGE, f"offset {offset}")
        # The high watermark itself is in range: an empty answer.
        fetched = kw.parse_fetch_v4(self.roundtrip(self.sock, kw.API_FETCH, 4, kw.fetch_v4_body("t", 0, 2)))
        self.assertEqual(fetched[0][2], 0)
        self.assertEqual(fetched[0][3], 2)
        self.check_healthy()


class TopicNamesTest(ServerTestCase):
    def test_invalid_topic_names_are_refused_not_created(self):
        names = ["..", ".", "a/b", "../../escape", "x\0y", "", "t" * 250, "sp ace", "\u00e9t\u00e9"]
        with kw.connect(self.server.port) as s:
            md = kw.parse_metadata_v1(self.roundtrip(s, kw.API_METADATA, 1, kw.metadata_body(names)))
            self.assertEqual([t["name"] for t in md["topics"]], names)
            for t in md["topics"]:
                self.assertEqual(t["error"], 17, f"topic name {t['name']!r}")  # INVALID_TOPIC_EXCEPTION
            for name in names:
                [(_, _, error, _)] = self.produce(s, name, kw.record_batch([b"v"]))
                self.assertEqual(error, kw.ERR_UNKNOWN_TOPIC_OR_PARTITION, f"produce to {name!r}")
            listed = kw.parse_metadata_v1(self.roundtrip(s, kw.API_METADATA, 1, kw.metadata_body(None)))
            self.assertFalse({t["name"] for t in listed["topics"]} & set(names))
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "escape")))
        self.check_healthy()

    def test_longest_topic_name_gets_a_well_formed_answer(self):
        # The error message quotes the name: it must not overflow its int16 length.
        name = "x" * 32767
        body = kw.array([kw.string(name) + kw.i32(1) + kw.i16(1) + kw.array([]) + kw.array([])]) + kw.i32(5000) + kw.i8(0)
        with kw.connect(self.server.port) as s:
            r = kw.Reader(self.roundtrip(s, 19, 4, body))
            r.i32()  # throttle
            [(got, error, message)] = r.array(lambda rr: (rr.string(), rr.i16(), rr.string()))
            self.assertTrue(r.done(), "a well-formed CreateTopics answer")
            self.assertEqual((got, error), (name, 17))
            self.assertIsNotNone(message)
            md = kw.parse_metadata_v1(self.roundtrip(s, kw.API_METADATA, 1, kw.metadata_body([name])))
            self.assertEqual(md["topics"][0]["error"], 17)
        self.check_healthy()

    def test_create_topics_with_absurd_partition_counts(self):
        def create_body(name, partitions, replication=1):
            topic = kw.string(name) + kw.i32(partitions) + kw.i16(replication) + kw.array([]) + kw.array([])
            return kw.array([topic]) + kw.i32(5000) + kw.i8(0)

        with kw.connect(self.server.port) as s:
            for partitions in (2_000_000_000, 0, -5, 10001):
                payload = self.roundtrip(s, 19, 4, create_body(f"p{partitions}", partitions))
                r = kw.Reader(payload)
                r.i32()  # throttle
                [(name, error, message)] = r.array(lambda rr: (rr.string(), rr.i16(), rr.string()))
                self.assertEqual(error, 37, f"{partitions} partitions: {message}")  # INVALID_PARTITIONS
        self.check_healthy()


# ====================================================================== fuzzing

class FuzzTest(ServerTestCase):
    """Random and mutated bodies behind valid headers, for every api and
    version evert advertises. A failure message names the seed and sample."""

    SEED = int(os.environ.get("EVERT_FUZZ_SEED", "20240612"))
    # EVERT_FUZZ_SCALE=10 runs ten times as many samples (for a long local run).
    SCALE = int(os.environ.get("EVERT_FUZZ_SCALE", "1"))

    def send_one(self, api_key, version, body, what):
        c = self.corr()
        flexible = api_key == kw.API_API_VERSIONS and version >= 3
        frames = self.send_and_expect_closed(kw.request(api_key, version, c, body, flexible=flexible), what,
                                             half_close=True)
        self.assertLessEqual(len(frames), 1, what)
        if frames:
            self.assertEqual(frames[0][0], c, what)
        self.assertTrue(self.server.alive(), f"{what}: evert died:\n{self.server.log()[-4000:]}")

    def advertised(self):
        with kw.connect(self.server.port) as s:
            error, keys = kw.parse_api_versions(self.roundtrip(s, kw.API_API_VERSIONS, 0), 0)
        self.assertEqual(error, 0)
        return keys

    def test_random_bodies_for_every_api_version(self):
        rng = random.Random(self.SEED)
        for key, (lo, hi) in sorted(self.advertised().items()):
            for version in range(lo, hi + 1):
                for sample in range(12 * self.SCALE):
                    body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 160)))
                    self.send_one(key, version, body, f"seed {self.SEED}: api {key} v{version} sample {sample}")
            self.check_healthy()

    def test_mutated_valid_requests(self):
        self.create_topic("fuzz")
        batch = kw.record_batch([b"value-1", b"value-2"])
        fetch_part = kw.i32(0) + kw.i32(-1) + kw.i64(0) + kw.i64(-1) + kw.i32(1 << 20)
        fetch_v11 = (kw.i32(-1) + kw.i32(0) + kw.i32(0) + kw.i32(1 << 20) + kw.i8(0) + kw.i32(0) + kw.i32(-1)
                     + kw.array([kw.string("fuzz") + kw.array([fetch_part])]) + kw.array([]) + kw.string(""))
        valid = [
            (kw.API_METADATA, 1, kw.metadata_body(["fuzz"])),
            (kw.API_METADATA, 4, kw.metadata_body(["fuzz"], version=4)),
            (kw.API_PRODUCE, 3, kw.produce_body("fuzz", 0, batch, acks=1)),
            (kw.API_PRODUCE, 7, kw.produce_body("fuzz", 0, batch, acks=-1)),
            (kw.API_FETCH, 4, kw.fetch_v4_body("fuzz", 0, 0)),
            (kw.API_FETCH, 11, fetch_v11),
            (kw.API_API_VERSIONS, 3, kw.api_versions_v3_body()),
            (19, 4, kw.array([kw.string("fz") + kw.i32(1) + kw.i16(1) + kw.array([]) + kw.array(
                [kw.string("retention.ms") + kw.string("1000")])]) + kw.i32(1000) + kw.i8(0)),
            (32, 1, kw.array([kw.i8(2) + kw.string("fuzz") + kw.array(None)]) + kw.i8(1)),
            (2, 1, kw.i32(-1) + kw.array([kw.string("fuzz") + kw.array([kw.i32(0) + kw.i64(-2)])])),
        ]
        rng = random.Random(self.SEED)
        for key, version, body in valid:
            self.send_one(key, version, body, f"api {key} v{version} unmutated")
            for sample in range(60 * self.SCALE):
                mutated = bytearray(body)
                for _ in range(rng.randrange(1, 4)):
                    if mutated:
                        mutated[rng.randrange(len(mutated))] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.getrandbits(8)])
                self.send_one(key, version, bytes(mutated),
                              f"seed {self.SEED}: api {key} v{version} mutation {sample}")
            self.check_healthy()


# ====================================================================== concurrency

class PipeliningTest(ServerTestCase):
    def test_500_pipelined_requests_answered_in_order(self):
        self.create_topic("pipe")
        s = self.connect()
        rng = random.Random(500)
        expected = []  # (correlation id, kind) of the requests that get answers
        produced = 0
        data = bytearray()
        for i in range(500):
            c = self.corr()
            kind = rng.choice(["versions", "versions3", "metadata", "produce", "produce_acks0"])
            if kind == "versions":
                data += kw.request(kw.API_API_VERSIONS, 0, c)
            elif kind == "versions3":
                data += kw.request(kw.API_API_VERSIONS, 3, c, kw.api_versions_v3_body(), flexible=True)
            elif kind == "metadata":
                data += kw.request(kw.API_METADATA, 1, c, kw.metadata_body(["pipe"]))
            elif kind == "produce":
                data += kw.request(kw.API_PRODUCE, 7, c, kw.produce_body("pipe", 0, kw.record_batch([b"%d" % i]), acks=1))
            else:
                data += kw.request(kw.API_PRODUCE, 3, c, kw.produce_body("pipe", 0, kw.record_batch([b"%d" % i]), acks=0))
            if kind.startswith("produce"):
                produced += 1
            if kind != "produce_acks0":
                expected.append((c, kind))
        s.sendall(bytes(data))
        s.settimeout(CLOSE_TIMEOUT_S)
        last_offset = -1
        for c, kind in expected:
            got, body = kw.recv_frame(s)
            self.assertEqual(got, c, f"response out of order: expected {c} ({kind})")
            if kind == "versions":
                self.assertEqual(kw.parse_api_versions(body, 0)[0], 0)
            elif kind == "versions3":
                self.assertEqual(kw.parse_api_versions(body, 3)[0], 0)
            elif kind == "metadata":
                self.assertEqual(kw.parse_metadata_v1(body)["topics"][0]["error"], 0)
            else:
                [(_, _, error, base)] = kw.parse_produce(body, 7)
                self.assertEqual(error, 0)
                self.assertGreater(base, last_offset, "offsets increase in request order")
                last_offset = base
        # Every produce, acks=0 ones included, was appended.
        fetched = kw.parse_fetch_v4(self.roundtrip(s, kw.API_FETCH, 4, kw.fetch_v4_body("pipe", 0, 0, max_bytes=1 << 24)))
        self.assertEqual(fetched[0][3], produced)
        self.assertEqual(kw.count_records(fetched[0][4]), produced)
        self.check_healthy()

    def test_bad_request_after_pipelined_good_ones(self):
        # Good requests before a malformed one are answered, then the connection closes.
        s = self.connect()
        good = [self.corr() for _ in range(20)]
        data = b"".join(kw.request(kw.API_API_VERSIONS, 0, c) for c in good)
        data += kw.request(kw.API_METADATA, 1, self.corr(), kw.i32(2_000_000_000))
        data += kw.request(kw.API_API_VERSIONS, 0, self.corr())
        s.sendall(data)
        frames = self.expect_closed(s, "malformed request in a pipeline")
        self.assertEqual([f[0] for f in frames], good)
        self.check_healthy()


    def test_more_pipelined_requests_than_the_in_flight_limit(self):
        # 3000 requests (the per-connection limit is 1000): reading pauses and
        # resumes; every answer arrives, in order.
        s = self.connect()
        corrs = [self.corr() for _ in range(3000)]
        sender = threading.Thread(
            target=lambda: s.sendall(b"".join(kw.request(kw.API_API_VERSIONS, 0, c) for c in corrs)))
        sender.start()
        s.settimeout(CLOSE_TIMEOUT_S * 3)
        got = [kw.recv_frame(s)[0] for _ in corrs]
        sender.join()
        self.assertEqual(got, corrs)
        self.check_healthy()

    def test_long_poll_holds_later_answers_in_order(self):
        self.create_topic("poll")
        s = self.connect()
        s.settimeout(CLOSE_TIMEOUT_S)
        c_fetch, c_versions = self.corr(), self.corr()
        start = time.monotonic()
        s.sendall(kw.request(kw.API_FETCH, 4, c_fetch, kw.fetch_v4_body("poll", 0, 0, max_wait_ms=400, min_bytes=1))
                  + kw.request(kw.API_API_VERSIONS, 0, c_versions))
        self.assertEqual(kw.recv_frame(s)[0], c_fetch)
        self.assertGreaterEqual(time.monotonic() - start, 0.3, "the fetch waited for data")
        self.assertEqual(kw.recv_frame(s)[0], c_versions)
        self.check_healthy()

    def test_parked_fetches_of_closed_connections(self):
        # Long polls whose connections go away must neither crash the server
        # nor delay its shutdown beyond the poll time.
        self.create_topic("parked")
        for i in range(50):
            s = kw.connect(self.server.port)
            s.sendall(kw.request(kw.API_FETCH, 4, i, kw.fetch_v4_body("parked", 0, 0, max_wait_ms=30000, min_bytes=1)))
            s.close()
        self.check_healthy("parked")  # the produce wakes the parked fetches
        for i in range(50):
            s = kw.connect(self.server.port)
            s.sendall(kw.request(kw.API_FETCH, 4, i, kw.fetch_v4_body("parked", 0, 99, max_wait_ms=30000,
                                                                     min_bytes=1)))
            s.close()
        self.check_healthy()


class ConcurrentConnectionsTest(ServerTestCase):
    CONNECTIONS = 200

    def test_200_concurrent_connections(self):
        self.create_topic("conc")
        socks = [self.connect() for _ in range(self.CONNECTIONS)]
        errors = []

        def client(i, s):
            try:
                s.settimeout(CLOSE_TIMEOUT_S * 3)
                c1, c2, c3 = 3 * i + 1, 3 * i + 2, 3 * i + 3
                s.sendall(kw.request(kw.API_API_VERSIONS, 3, c1, kw.api_versions_v3_body(), flexible=True)
                          + kw.request(kw.API_METADATA, 1, c2, kw.metadata_body(["conc"]))
                          + kw.request(kw.API_PRODUCE, 7, c3,
                                       kw.produce_body("conc", 0, kw.record_batch([b"c%d" % i]), acks=-1)))
                got = [kw.recv_frame(s) for _ in range(3)]
                if [g[0] for g in got] != [c1, c2, c3]:
                    errors.append(f"connection {i}: correlation ids {[g[0] for g in got]}")
                    return
                if kw.parse_api_versions(got[0][1], 3)[0] != 0:
                    errors.append(f"connection {i}: ApiVersions error")
                [(_, _, error, _)] = kw.parse_produce(got[2][1], 7)
                if error != 0:
                    errors.append(f"connection {i}: produce error {error}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"connection {i}: {e!r}")

        threads = [threading.Thread(target=client, args=(i, s)) for i, s in enumerate(socks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for s in socks:
            s.close()
        with kw.connect(self.server.port) as s:
            fetched = kw.parse_fetch_v4(self.roundtrip(s, kw.API_FETCH, 4, kw.fetch_v4_body("conc", 0, 0)))
            self.assertEqual(fetched[0][3], self.CONNECTIONS)
        self.check_healthy()

    def test_many_connections_dropped_mid_request(self):
        socks = []
        for i in range(self.CONNECTIONS):
            s = self.connect()
            req = kw.request(kw.API_METADATA, 1, i, kw.metadata_body(None))
            s.sendall(req[:len(req) // 2])
            socks.append(s)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST
        self.check_healthy()


    def test_readers_that_vanish_while_records_are_sent(self):
        """Fetch answers leave through sendfile(2), which raises SIGPIPE when
        the peer has gone; that must cost the connection, not the server."""
        with kw.connect(self.server.port) as s:
            self.create_topic("vanish")
            big = [bytes(1000) for _ in range(500)]
            for _ in range(8):
                [(_, _, error, _)] = self.produce(s, "vanish", kw.record_batch(big))
                self.assertEqual(error, 0)
        for i in range(60):
            r = kw.connect(self.server.port)
            r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            r.sendall(kw.request(kw.API_FETCH, 4, i, kw.fetch_v4_body("vanish", 0, 0, max_bytes=64 << 20)))
            r.recv(1024)  # the answer has started
            if i % 2:
                r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
            r.close()  # while the rest of the answer is still being sent
        self.check_healthy()


def unregistered_suites():
    """ServerTestCase classes that tests/CMakeLists.txt does not run."""
    cmake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CMakeLists.txt")
    with open(cmake) as f:
        text = f.read()
    suites = [c.__name__ for c in globals().values()
              if isinstance(c, type) and issubclass(c, ServerTestCase) and c is not ServerTestCase]
    return [name for name in suites if not re.search(rf"\b{name}\b", text)]


if __name__ == "__main__":
    missing = unregistered_suites()
    if missing:
        sys.exit(f"test suites not registered in tests/CMakeLists.txt: {missing}")
    unittest.main()
