"""Warm restarts: a runtime's entries written to one file, and read back into a new runtime.

``await runtime.save(path)`` writes every live entry of every layer (value, TTL left, tags, cost,
weight) through the stores' versioned msgpack envelope (:mod:`rgruntime.stores.serialization`:
JSON-like values, bytes, and attrs / dataclass / pydantic values through registered codecs; never
pickle). The file is written to a temporary name beside ``path``, flushed to disk and renamed
over it, so a crash leaves the old file or the new one, never half of one. ``await
runtime.load(path)`` puts the entries back with the TTL they had left, less the wall-clock time
since the save; what expired meanwhile is skipped. A runtime opened with ``cache_config=
{"persist": path}`` loads the file when it opens (if there is one) and saves it when it closes.

Values that cannot be encoded are left out and counted (a value only the process can hold, such
as a lock, cannot survive a restart); a record that cannot be decoded (a corrupt or foreign file)
is skipped and counted, never raised and never executed. Encoding, decoding and the file's I/O
run in a worker thread; entries go back into the layers a slice at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel
import attrs
import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]

from rgruntime.errors import InvalidArgumentError, RGRuntimeError
from rgruntime.runtime.layer import Layer
from rgruntime.stores.errors import UndecodableEntryError
from rgruntime.stores.serialization import Envelope, Serializer

__all__ = ["SNAPSHOT_FORMAT", "SnapshotError", "SnapshotReport", "load_snapshot", "save_snapshot"]

#: The file's format name and version (its first record).
SNAPSHOT_FORMAT: Final = ("rgruntime-snapshot", 1)

#: Entries put back into the layers between two checkpoints.
_LOAD_SLICE: Final = 1_000


class SnapshotError(RGRuntimeError):
    """A snapshot file cannot be read as one: not a snapshot, or of a format this version
    cannot read."""


@attrs.frozen(kw_only=True)
class SnapshotReport:
    """What a save or a load did."""

    path: str
    #: Entries written (save) or put back (load), by layer.
    entries: Mapping[str, int]
    #: Save: values that could not be encoded. Load: records that could not be decoded.
    skipped: int = 0
    #: Load: entries that expired between the save and the load; layers the runtime lacks.
    expired: int = 0
    unknown_layers: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.entries.values())


def _check_path(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InvalidArgumentError("path", path, "a file path (str or os.PathLike)")
    return Path(path)


async def save_snapshot(
    layers: Mapping[str, Layer], path: str | os.PathLike[str], serializer: Serializer | None = None
) -> SnapshotReport:
    """Write the live entries of ``layers`` to ``path`` (see the module documentation)."""
    target = _check_path(path)
    serializer = serializer or Serializer()
    records = [(name, layer.export()) for name, layer in layers.items()]
    return await anyio.to_thread.run_sync(_write, target, records, serializer, time.time())


def _write(
    target: Path, records: list[tuple[str, list[Any]]], serializer: Serializer, now: float
) -> SnapshotReport:
    counts: dict[str, int] = {}
    skipped = 0
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    packer = msgpack.Packer(use_bin_type=True)
    try:
        with temporary.open("wb") as file:
            file.write(packer.pack([*SNAPSHOT_FORMAT, now]))
            for layer, entries in records:
                counts[layer] = 0
                for record in entries:
                    envelope = Envelope(
                        value=record.value,
                        created=now,
                        ttl=record.ttl,
                        tags=record.tags,
                        cost=record.cost,
                    )
                    try:
                        data = serializer.encode(envelope)
                    except InvalidArgumentError:
                        skipped += 1  # a value that cannot leave the process
                        continue
                    file.write(packer.pack([layer, record.key, record.size, data]))
                    counts[layer] += 1
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return SnapshotReport(path=str(target), entries=counts, skipped=skipped)


async def load_snapshot(
    layers: Mapping[str, Layer], path: str | os.PathLike[str], serializer: Serializer | None = None
) -> SnapshotReport:
    """Put the entries saved in ``path`` back into ``layers`` (see the module documentation)."""
    source = _check_path(path)
    serializer = serializer or Serializer()
    saved_at, records, skipped = await anyio.to_thread.run_sync(_read, source, serializer)
    elapsed = max(0.0, time.time() - saved_at)
    counts: dict[str, int] = {}
    expired = 0
    unknown: set[str] = set()
    for done, (name, key, size, envelope) in enumerate(records, 1):
        layer = layers.get(name)
        if layer is None:
            unknown.add(name)
            continue
        ttl = envelope.ttl
        if ttl is not None:
            ttl -= elapsed
            if ttl <= 0:
                expired += 1
                continue
        max_ttl = layer.config.max_ttl
        if ttl is not None and max_ttl is not None:
            ttl = min(ttl, max_ttl)
        layer.set_nowait(
            key, envelope.value, ttl=ttl, tags=envelope.tags, size=size, cost=envelope.cost
        )
        counts[name] = counts.get(name, 0) + 1
        if done % _LOAD_SLICE == 0:
            await anyio.lowlevel.checkpoint()
    return SnapshotReport(
        path=str(source),
        entries=counts,
        skipped=skipped,
        expired=expired,
        unknown_layers=tuple(sorted(unknown)),
    )


def _read(source: Path, serializer: Serializer) -> tuple[float, list[Any], int]:
    records: list[Any] = []
    skipped = 0
    with source.open("rb") as file:
        unpacker = msgpack.Unpacker(file, raw=False, strict_map_key=True, use_list=True)
        try:
            header = next(unpacker)
        except (StopIteration, ValueError, msgpack.UnpackException) as error:
            raise SnapshotError(
                f"{source} is not an rgruntime snapshot (empty or corrupt)"
            ) from error
        if (
            not isinstance(header, list)
            or len(header) != 3
            or tuple(header[:2]) != SNAPSHOT_FORMAT
            or not isinstance(header[2], int | float)
        ):
            raise SnapshotError(
                f"{source} is not an rgruntime snapshot of format {SNAPSHOT_FORMAT[1]}"
            )
        while True:
            try:
                record = next(unpacker)
            except StopIteration:
                break
            except (ValueError, msgpack.UnpackException):
                skipped += 1  # a truncated tail: what came before it still loads
                break
            decoded = _decode_record(record, serializer)
            if decoded is None:
                skipped += 1
            else:
                records.append(decoded)
    return float(header[2]), records, skipped


def _decode_record(record: object, serializer: Serializer) -> tuple[str, str, int, Envelope] | None:
    """A record of the file as ``(layer, key, size, envelope)``; None if it is not one."""
    if not isinstance(record, list) or len(record) != 4:
        return None
    name, key, size, data = record
    if not (isinstance(name, str) and isinstance(key, str) and isinstance(size, int)):
        return None
    try:
        return name, key, size, serializer.decode(data)
    except UndecodableEntryError:
        return None
