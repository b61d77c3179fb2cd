#!/usr/bin/env python3
"""Writes the seeds of fuzz_session (tests/fuzz/corpus/session/) in its input format, which
fuzz_session.cpp describes: each seed is a short scenario, byte 0 choosing the server (0: small
limits and a one-thread handler pool; 1: cmdwire-server's defaults, a two-thread pool).
Run it again after changing the format: python3 tests/fuzz/make_session_seeds.py
The corpus's crash_* files are not written here: they are inputs the fuzzer found that crashed
the server (docs/FUZZING.md), kept as regression seeds; a change of format must rewrite them."""
import os

# kinds of action (op = kind << 2 | slot)
RAW, REQ, HELLO, SHUT, CLOSE, RESET, WAIT, DRAIN, RECONNECT, PARTIAL = range(10)
# commands' indexes in fuzz_session.cpp's table
PING, ECHO, STRING, STRUCT, PROTO, SLEEP, HASH = 0, 1, 2, 3, 4, 5, 6
DAYTIME, COMMANDS, HEALTH, STATS, DESCRIBE, SUBSCRIBE, PUBLISH, NOPE = 8, 9, 10, 11, 12, 13, 14, 15
# request flags
ID, DEADLINE, JSON, FRAMED, CRLF, ATTRS_FIRST, UNKNOWN_ATTR, ID_ZEROS = (1 << i for i in range(8))
# HASH rounds: arg & 7 indexes 0, 1, 100, 3000, 10000, 30000, 100000, 300000


def op(kind, slot):
    return bytes([kind << 2 | slot])


def raw(slot, data):
    return op(RAW, slot) + bytes([len(data)]) + data


def request(cmd, flags=0, id=None, deadline=None, arg=0, body=b"", extra=0):
    out = bytes([cmd | extra, flags])
    if flags & ID:
        out += bytes([id])
    if flags & DEADLINE:
        out += bytes([deadline])
    return out + bytes([arg]) + body


def req(slot, *args, **kw):
    return op(REQ, slot) + request(*args, **kw)


def partial(slot, cut, *args, **kw):
    return op(PARTIAL, slot) + request(*args, **kw) + bytes([cut])


def hello(slot, ooo=True, with_id=False):
    return op(HELLO, slot) + bytes([(1 if ooo else 0) | (2 if with_id else 0)])


def wait(slot, ms):
    return op(WAIT, slot) + bytes([ms])


def simple(kind, slot):
    return op(kind, slot)


def hash_req(slot, rounds_index, flags=0, id=None, deadline=None):
    return req(slot, HASH, flags, id=id, deadline=deadline, arg=rounds_index | 3 << 3)


seeds = {
    # Every command once, in order, each reply awaited.
    "all_commands": bytes([0])
    + req(0, PING, ID, id=1)
    + req(0, ECHO, ID, id=2, arg=5, body=b"hello")
    + req(0, STRING, arg=16, body=b"Additional data.")
    + req(0, STRUCT, JSON, arg=132)
    + req(0, STRUCT, 0, arg=135)
    + req(0, PROTO, JSON, arg=129)
    + req(0, SLEEP, ID, id=3, arg=2)
    + hash_req(0, 3, ID, id=4)
    + req(0, DAYTIME)
    + req(0, COMMANDS)
    + req(0, HEALTH)
    + req(0, STATS)
    + req(0, DESCRIBE, arg=5)
    + req(0, PUBLISH, arg=0)
    + req(0, NOPE, ID, id=5, arg=0)
    + wait(0, 20),
    # The first crash: a deadline that passes while an offloaded HASH runs, on the
    # server with a two-thread pool; framed and line form, in order and out of order.
    "hash_deadline": bytes([1])
    + hash_req(0, 6, DEADLINE, deadline=1)
    + hash_req(0, 7, DEADLINE | ID, id=9, deadline=5)
    + hash_req(0, 7, DEADLINE | FRAMED, deadline=3)
    + wait(0, 20)
    + hello(1)
    + hash_req(1, 7, DEADLINE | ID, id=1, deadline=2)
    + hash_req(1, 6, DEADLINE | ID, id=2, deadline=0)
    + wait(1, 20),
    # The same on the one-thread pool.
    "hash_deadline_pool1": bytes([0])
    + hash_req(0, 7, DEADLINE, deadline=2)
    + hash_req(0, 6, DEADLINE | ID, id=3, deadline=1)
    + wait(0, 20),
    # The second crash: out-of-order connections queue offloaded HASH calls (with and
    # without id=, mixed with SLEEP, ECHO, STRUCT) on the one-thread pool, then close,
    # half-close or reset, back to back.
    "ooo_hash_close": bytes([0])
    + hello(0)
    + hash_req(0, 7, ID, id=1)
    + hash_req(0, 6, ID, id=2)
    + req(0, SLEEP, ID, id=3, arg=5)
    + hash_req(0, 5)
    + simple(CLOSE, 0)
    + hello(1)
    + hash_req(1, 7, ID, id=1)
    + req(1, ECHO, ID, id=2, arg=2, body=b"hi")
    + hash_req(1, 6, ID, id=3)
    + simple(SHUT, 1)
    + hello(2)
    + hash_req(2, 7, ID, id=1)
    + req(2, STRUCT, ID | JSON, id=2, arg=132)
    + hash_req(2, 7, ID, id=3)
    + wait(2, 5)
    + simple(RESET, 2)
    + hello(3)
    + hash_req(3, 6, ID, id=1)
    + hash_req(3, 7, ID, id=2)
    + simple(CLOSE, 3)
    + hello(0)
    + hash_req(0, 7, ID, id=7)
    + hash_req(0, 7, ID, id=8)
    + simple(CLOSE, 0),
    # Out of order with SLEEP and PING overtaking it, a deadline on SLEEP, then back in order.
    "ooo_sleep": bytes([1])
    + hello(0, with_id=True)
    + req(0, SLEEP, ID, id=1, arg=10)
    + req(0, PING, ID, id=2)
    + req(0, SLEEP, ID | DEADLINE, id=3, deadline=2, arg=30)
    + wait(0, 15)
    + hello(0, ooo=False)
    + req(0, PING)
    + wait(0, 5),
    # Pub/sub: one subscriber, a publisher, then the subscriber half-closes.
    "pubsub": bytes([0])
    + req(0, SUBSCRIBE, arg=0)
    + wait(0, 5)
    + req(1, PUBLISH, arg=0)
    + req(1, PUBLISH, FRAMED, arg=0)
    + wait(1, 5)
    + simple(SHUT, 0)
    + wait(0, 5),
    # Framing errors: a request line with a bad length, an over-long line, an unknown command
    # with its line parsed as a request, CRLF, a partial request left hanging.
    "framing": bytes([0])
    + raw(0, b"PING 1x\nPING\n")
    + wait(0, 2)
    + raw(1, b"NOPE\nsome text\n")
    + raw(2, b"PING\r\nSTRING\r\nAdditional data.\r\n")
    + raw(3, b"ECHO 99999999\n")
    + partial(0, 9, ECHO, ID | CRLF, id=4, arg=20, body=b"0123456789abcdefghij")
    + wait(2, 5),
    # Pipelined requests over the small server's max_pipelined, without reading the replies.
    "pipeline": bytes([0])
    + b"".join(req(0, PING, ID, id=i) for i in range(12))
    + req(0, STATS, JSON)
    + simple(DRAIN, 0)
    + wait(0, 5),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "session")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
