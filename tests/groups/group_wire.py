"""A minimal blocking Kafka client for the classic group APIs, for tests that
need to stop halfway through a rebalance, which no real client lets us do.

Requests (non-flexible versions only): JoinGroup v1, SyncGroup v1,
Heartbeat v1, LeaveGroup v1. Every call has a socket timeout.
"""

import socket
import struct

JOIN_GROUP, SYNC_GROUP, HEARTBEAT, LEAVE_GROUP = 11, 14, 12, 13


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _bytes(b):
    return struct.pack(">i", len(b)) + b


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def i16(self):
        (v,) = struct.unpack_from(">h", self.data, self.pos)
        self.pos += 2
        return v

    def i32(self):
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def str(self):
        n = self.i16()
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return v

    def bytes(self):
        n = self.i32()
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v


class GroupConnection:
    """One TCP connection; send() and recv() may be split to leave a request parked."""

    def __init__(self, port, client_id="wire-test", timeout_s=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.client_id = client_id
        self.correlation = 0

    def close(self):
        self.sock.close()

    def send(self, api_key, version, body):
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _str(self.client_id)
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return self.correlation

    def recv(self, correlation):
        size = struct.unpack(">i", self._read(4))[0]
        data = self._read(size)
        r = _Reader(data)
        got = r.i32()
        assert got == correlation, f"correlation {got}, expected {correlation}"
        return r

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    # JoinGroup v1
    def send_join(self, group, member_id, session_ms=6000, rebalance_ms=30000, metadata=b"\x00\x00\x00\x00\x00\x00"):
        body = (_str(group) + struct.pack(">ii", session_ms, rebalance_ms) + _str(member_id) + _str("consumer") +
                struct.pack(">i", 1) + _str("range") + _bytes(metadata))
        return self.send(JOIN_GROUP, 1, body)

    def recv_join(self, correlation):
        r = self.recv(correlation)
        out = {"error": r.i16(), "generation": r.i32(), "protocol": r.str(), "leader": r.str(),
               "member_id": r.str()}
        out["members"] = [(r.str(), r.bytes()) for _ in range(r.i32())]
        return out

    # SyncGroup v1 (throttle first in the response)
    def send_sync(self, group, generation, member_id, assignments=()):
        body = _str(group) + struct.pack(">i", generation) + _str(member_id) + struct.pack(">i", len(assignments))
        for mid, data in assignments:
            body += _str(mid) + _bytes(data)
        return self.send(SYNC_GROUP, 1, body)

    def recv_sync(self, correlation):
        r = self.recv(correlation)
        r.i32()  # throttle
        return {"error": r.i16(), "assignment": r.bytes()}

    # Heartbeat v1
    def heartbeat(self, group, generation, member_id):
        c = self.send(HEARTBEAT, 1, _str(group) + struct.pack(">i", generation) + _str(member_id))
        r = self.recv(c)
        r.i32()
        return r.i16()

    # LeaveGroup v1
    def leave(self, group, member_id):
        c = self.send(LEAVE_GROUP, 1, _str(group) + _str(member_id))
        r = self.recv(c)
        r.i32()
        return r.i16()
