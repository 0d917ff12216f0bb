"""Read the history rows of an offline W&B run file (`run-*.wandb`, a LevelDB-style record log)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

FILE_HEADER, BLOCK, RECORD_HEADER = 7, 32768, 7  # ':W&B' + magic + version; 32 KiB blocks; crc, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[bytes]:
    data, pos, pending, out = Path(path).read_bytes(), FILE_HEADER, b"", []
    while pos + RECORD_HEADER <= len(data):
        if BLOCK - pos % BLOCK < RECORD_HEADER:  # block trailer too short for a header: skip to the next block
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + RECORD_HEADER])
        chunk = data[pos + RECORD_HEADER:pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind == FULL:
            out.append(chunk)
        elif kind in (FIRST, MIDDLE):
            pending = (pending if kind == MIDDLE else b"") + chunk
        elif kind == LAST:
            out.append(pending + chunk)
        else:
            break
    return out


def history(path: Path) -> list[dict]:
    rows = []
    for raw in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows
