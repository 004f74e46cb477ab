"""A tiny Kafka wire encoder/decoder for the robustness suite.

Only what the tests need, written from the protocol description
(/work/shared/reference/kafka-protocol.md), and deliberately able to write
malformed bytes: every length and count can be given explicitly. No client
library is involved, so nothing "fixes" a bad request before it is sent.

All integers are big-endian. Request header v1: api_key i16, api_version i16,
correlation_id i32, client_id i16-length string; v2 adds a tag buffer.
"""

import socket
import struct
import zlib

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18

ERR_NONE = 0
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_CORRUPT_MESSAGE = 2
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_REQUIRED_ACKS = 21
ERR_UNSUPPORTED_VERSION = 35
ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
ERR_INVALID_RECORD = 87


# ---------------------------------------------------------------- primitives

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def varint(v):
    """Zig-zag varint (record fields)."""
    return uvarint((v << 1) ^ (v >> 63))


def string(s, length=None):
    """Classic string; None = null. `length` overrides the written length."""
    if s is None:
        return i16(-1 if length is None else length)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b) if length is None else length) + b


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def nbytes(b, length=None):
    """Classic nullable bytes; `length` overrides the written length."""
    if b is None:
        return i32(-1)
    return i32(len(b) if length is None else length) + b


def array(items, count=None):
    """Classic array of already-encoded items; None = null."""
    if items is None:
        return i32(-1)
    return i32(len(items) if count is None else count) + b"".join(items)


def frame(payload, size=None):
    """A size-prefixed frame; `size` overrides the declared size."""
    return i32(len(payload) if size is None else size) + payload


def request(api_key, version, correlation_id, body=b"", client_id="robustness", flexible=False):
    header = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id)
    if flexible:
        header += uvarint(0)
    return frame(header + body)


# ---------------------------------------------------------------- CRC32C

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---------------------------------------------------------------- record batches

def record(value, key=None, offset_delta=0, timestamp_delta=0):
    body = i8(0) + varint(timestamp_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)  # headers
    return varint(len(body)) + body


def record_batch(values, base_timestamp=1_700_000_000_000, magic=2):
    """A RecordBatch v2 (uncompressed) holding `values` (bytes each)."""
    records = b"".join(record(v, offset_delta=i) for i, v in enumerate(values))
    after_crc = (i16(0)                      # attributes
                 + i32(len(values) - 1)      # last_offset_delta
                 + i64(base_timestamp)
                 + i64(base_timestamp)       # max_timestamp
                 + i64(-1) + i16(-1) + i32(-1)  # producer id, epoch, base sequence
                 + i32(len(values))
                 + records)
    crc = crc32c(after_crc)
    after_length = i32(0) + i8(magic) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


def legacy_message_set_v1(value, key=b"k"):
    """A magic-1 message set with one message (pre-0.11 format)."""
    body = i8(1) + i8(0) + i64(1_700_000_000_000) + nbytes(key) + nbytes(value)
    crc = zlib.crc32(body) & 0xFFFFFFFF
    message = struct.pack(">I", crc) + body
    return i64(0) + i32(len(message)) + message


# ---------------------------------------------------------------- request bodies

def api_versions_v3_body(name="robustness", version="1.0"):
    return compact_string(name) + compact_string(version) + uvarint(0)


def metadata_body(topics, version=1, allow_auto_create=True):
    """topics: list of names, or None for all (v1+)."""
    body = array(None if topics is None else [string(t) for t in topics])
    if version >= 4:
        body += i8(1 if allow_auto_create else 0)
    return body


def produce_body(topic, partition, records, acks=-1, timeout_ms=10_000, records_length=None):
    """Produce v3-v7 body (identical layouts); `records` are raw bytes."""
    part = i32(partition) + nbytes(records, records_length)
    return string(None) + i16(acks) + i32(timeout_ms) + array([string(topic) + array([part])])


def fetch_v4_body(topic, partition, offset, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20):
    part = i32(partition) + i64(offset) + i32(max_bytes)
    return (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array([string(topic) + array([part])]))


# ---------------------------------------------------------------- response reading

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"response truncated: need {n} at {self.pos} of {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, read_item):
        n = self.i32()
        return None if n < 0 else [read_item(self) for _ in range(n)]

    def compact_array(self, read_item):
        n = self.uvarint() - 1
        return None if n < 0 else [read_item(self) for _ in range(n)]

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def done(self):
        return self.pos == len(self.data)


def parse_api_versions(body, version):
    r = Reader(body)
    error = r.i16()

    def key_range(rr):
        k, lo, hi = rr.i16(), rr.i16(), rr.i16()
        if version >= 3:
            rr.skip_tags()
        return (k, lo, hi)

    keys = r.compact_array(key_range) if version >= 3 else r.array(key_range)
    if version >= 1:
        r.i32()
    if version >= 3:
        r.skip_tags()
    if not r.done():
        raise ValueError("bytes after the ApiVersions body")
    return error, {k: (lo, hi) for k, lo, hi in keys}


def parse_metadata_v1(body):
    r = Reader(body)
    brokers = r.array(lambda rr: (rr.i32(), rr.string(), rr.i32(), rr.string()))
    controller = r.i32()

    def partition(rr):
        return {"error": rr.i16(), "index": rr.i32(), "leader": rr.i32(),
                "replicas": rr.array(Reader.i32), "isr": rr.array(Reader.i32)}

    def topic(rr):
        return {"error": rr.i16(), "name": rr.string(), "internal": rr.i8(), "partitions": rr.array(partition)}

    topics = r.array(topic)
    if not r.done():
        raise ValueError("bytes after the Metadata body")
    return {"brokers": brokers, "controller": controller, "topics": topics}


def parse_produce(body, version):
    """[(topic, partition, error, base_offset)]"""
    r = Reader(body)
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index, error, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time
            if version >= 5:
                r.i64()  # log_start_offset
            out.append((name, index, error, base))
    r.i32()  # throttle
    if not r.done():
        raise ValueError("bytes after the Produce body")
    return out


def parse_fetch_v4(body):
    """[(topic, partition, error, high_watermark, record_bytes)]"""
    r = Reader(body)
    r.i32()  # throttle
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index, error, hw = r.i32(), r.i16(), r.i64()
            r.i64()  # last stable offset
            r.array(lambda rr: (rr.i64(), rr.i64()))
            records = r.nbytes()
            out.append((name, index, error, hw, records))
    if not r.done():
        raise ValueError("bytes after the Fetch body")
    return out


def count_records(batches):
    """Records in a run of v2 batches (the last one may be partial)."""
    n, pos = 0, 0
    while pos + 61 <= len(batches):
        length = struct.unpack(">i", batches[pos + 8:pos + 12])[0]
        if pos + 12 + length > len(batches):
            break
        n += struct.unpack(">i", batches[pos + 57:pos + 61])[0]
        pos += 12 + length
    return n


# ---------------------------------------------------------------- sockets

class Closed(Exception):
    """The server closed the connection."""


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            raise Closed()
        if not chunk:
            raise Closed()
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    """(correlation_id, rest of the response) of the next response frame."""
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    if size < 4:
        raise ValueError(f"response frame of {size} bytes")
    payload = recv_exact(sock, size)
    return struct.unpack(">i", payload[:4])[0], payload[4:]


def wait_closed(sock, timeout_s=10.0):
    """Reads until the server closes; returns the response frames read first.
    Raises socket.timeout if the connection stays open."""
    sock.settimeout(timeout_s)
    frames = []
    while True:
        try:
            frames.append(recv_frame(sock))
        except Closed:
            return frames


def connect(port, timeout_s=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
