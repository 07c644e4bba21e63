"""A model state stored as the difference from the system prompt's state.

The state after system prompt + a context block holds the system prompt's ~565 cached tokens
(16 MB with the 1.5B model) and the block's ~130 (4 MB). llama.cpp writes the cache per layer,
so the block state is the system state with the block's rows inserted in every layer (and a
few counts and the last logits replaced). `encode` finds those common runs without knowing the
format (copies from the base, literal bytes between) and checks the round trip, so a changed
format only costs space: when no compact delta is found, the full state is stored.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"NBSD1"
MIN_RUN = 64  # a copy shorter than this is stored literally
PROBE = 64  # bytes that resynchronise base and full after an insertion or a deletion
WINDOW = 1 << 20  # how far ahead a probe is searched (a block inserts ~66 KB per layer)
SHORT_REPLACE = 16  # replaced runs up to this long are found by trying each length
STEP = 4096  # otherwise both sides advance by this much (a replaced region such as the logits)


def _run(full: memoryview, i: int, base: memoryview, j: int) -> int:
    """Length of the common run of full[i:] and base[j:]."""
    n = 0
    limit = min(len(full) - i, len(base) - j)
    chunk = 1 << 16
    while n < limit:
        size = min(chunk, limit - n)
        a = np.frombuffer(full, np.uint8, size, i + n)
        b = np.frombuffer(base, np.uint8, size, j + n)
        diff = np.flatnonzero(a != b)
        if diff.size:
            return n + int(diff[0])
        n += size
    return n


def encode(base: bytes, full: bytes) -> bytes | None:
    """`full` as copies from `base` and literal bytes; None when that saves less than half."""
    fv, bv = memoryview(full), memoryview(base)
    ops: list[bytes] = []
    literal = bytearray()
    i = j = 0

    def flush() -> None:
        if literal:
            ops.append(b"L" + struct.pack("<Q", len(literal)) + bytes(literal))
            literal.clear()

    while i < len(full):
        run = _run(fv, i, bv, j) if j < len(base) else 0
        if run >= MIN_RUN or (run and i + run == len(full)):
            flush()
            ops.append(b"C" + struct.pack("<QQ", j, run))
            i, j = i + run, j + run
            continue
        if run:
            literal += fv[i:i + run]
            i, j = i + run, j + run
            continue
        for r in range(1, SHORT_REPLACE + 1):  # a count or a position that changed
            if _run(fv, i + r, bv, j + r) >= MIN_RUN:
                literal += fv[i:i + r]
                i, j = i + r, j + r
                break
        else:
            found = full.find(base[j:j + PROBE], i, i + WINDOW) if len(base) - j >= PROBE else -1
            if found > i:  # rows inserted into full
                literal += fv[i:found]
                i = found
                continue
            found = base.find(full[i:i + PROBE], j, j + WINDOW) if len(full) - i >= PROBE else -1
            if found > j:  # rows of base left out
                j = found
                continue
            step = min(STEP, len(full) - i)
            literal += fv[i:i + step]
            i, j = i + step, j + step
    flush()
    delta = MAGIC + struct.pack("<Q", len(full)) + b"".join(ops)
    if len(delta) * 2 > len(full) or decode(base, delta) != full:
        return None
    return delta


def decode(base: bytes, delta: bytes) -> bytes:
    if not delta.startswith(MAGIC):
        raise ValueError("not a state delta")
    view = memoryview(delta)
    (size,) = struct.unpack_from("<Q", delta, len(MAGIC))
    at = len(MAGIC) + 8
    parts: list[bytes | memoryview] = []
    bv = memoryview(base)
    while at < len(delta):
        kind = delta[at:at + 1]
        if kind == b"C":
            j, n = struct.unpack_from("<QQ", delta, at + 1)
            if j + n > len(base):
                raise ValueError("state delta does not fit its base")
            parts.append(bv[j:j + n])
            at += 17
        elif kind == b"L":
            (n,) = struct.unpack_from("<Q", delta, at + 1)
            parts.append(view[at + 9:at + 9 + n])
            at += 9 + n
        else:
            raise ValueError("corrupt state delta")
    out = b"".join(parts)
    if len(out) != size:
        raise ValueError("state delta has the wrong size")
    return out
