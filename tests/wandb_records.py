"""Read W&B's offline run files back, for tests: wandb 0.31 has no public reader for them.

A ``run-<id>.wandb`` file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version),
then 32 KiB blocks of records, each with a 7-byte header (CRC32, length, type: full, first,
middle, last) and a piece of a protobuf ``Record``. The protobuf classes are wandb's own, so this
is pinned to wandb's minor version (see pyproject.toml).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every complete record of one .wandb file, in order (its writer may still be adding some)."""
    data = path.read_bytes()
    if len(data) < HEADER:  # created, header not written yet
        return []
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    found, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:  # the writer pads a block's tail that cannot hold a header
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if kind == 0 and length == 0:
            position += left_in_block
            continue
        if position + HEADER + length > len(data):  # the writer is midway through this one
            break
        piece = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        pending = piece if kind in (FULL, FIRST) else pending + piece
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


@dataclass
class OfflineRun:
    """What a test wants of one offline run."""

    id: str
    group: str
    name: str
    job_type: str
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def read_run(folder: Path, wait_s: float = 10.0) -> OfflineRun:
    """The run kept in ``folder`` (``offline-run-<time>-<id>``), once its exit is written.

    wandb-core writes the file from its own process, through a buffer: ``run.finish()`` may
    return a moment before the records reach the file (the exit record, or all of them), so a
    file without them is read again.
    """
    deadline = time.monotonic() + wait_s
    while True:
        run = _read_once(folder)
        if run is not None and run.exit_code is not None:
            return run
        if time.monotonic() > deadline:
            if run is None:
                raise ValueError(f"{folder} holds no run record after {wait_s:.0f} s")
            return run
        time.sleep(0.1)


def _read_once(folder: Path) -> OfflineRun | None:
    """The run as far as its file holds it now; None before its run record is written."""
    paths = list(folder.glob("run-*.wandb"))
    run: OfflineRun | None = None
    for record in records(paths[0]) if paths else []:
        kind = record.WhichOneof("record_type")
        if kind == "run":  # sent again when the tags or the name change: keep what came before
            r = record.run
            if run is None:
                run = OfflineRun(r.run_id, r.run_group, r.display_name, r.job_type)
            run.name, run.tags = r.display_name, list(r.tags)
            run.config |= _items(r.config.update)
        elif run is None:
            continue
        elif kind == "config":
            run.config |= _items(record.config.update)
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary |= _items(record.summary.update)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def read_runs(wandb_folder: Path) -> list[OfflineRun]:
    """Every offline run under a ``wandb/`` folder."""
    return [read_run(folder) for folder in sorted(wandb_folder.glob("offline-run-*"))]


def _items(items: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        values[key] = json.loads(item.value_json)
    return values
