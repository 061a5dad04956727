"""Reading OTLP trace inputs into documents: JSON lines, one JSON document, protobuf, gzip of any.

A file is split into ``Chunk``s of whole documents. JSON lines are cut at line boundaries into
chunks of about ``CHUNK_BYTES`` (memory stays bounded whatever the file size) and handed to DuckDB
as an Arrow table of lines over the chunk's own bytes (no copy, no Python string). A single JSON
document is one chunk. Protobuf (``TracesData`` / ``ExportTraceServiceRequest``, one message or a
length-delimited stream) is decoded with opentelemetry-proto and re-encoded by ``json_format``,
whose base64 ids and enum names the SQL transform accepts like any other producer's.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa

CHUNK_BYTES = 16 << 20
WHITESPACE_BYTES = list(b" \t\r\n\f\v")
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Chunk:
    """Whole documents from one input: either JSON-lines bytes or a list of documents."""

    data: bytes | bytearray | None = None
    """JSON lines (several whole lines, UTF-8), the first of which is line ``first_line``; not
    changed once the chunk is made (DuckDB reads the documents from this very buffer)."""
    first_line: int = 1
    line_starts: list[int] = field(default_factory=list)
    """Where each line of ``data`` starts (0 first); found once, by ``json_line_chunks``."""
    documents: list[tuple[int | None, int | None, str]] = field(default_factory=list)
    """(line, byte_offset, OTLP/JSON text) documents, for single-document and protobuf inputs."""
    rejects: list[tuple[str, str, int | None]] = field(default_factory=list)
    """(reason, raw description, byte_offset) of input that could not be turned into documents."""
    end_offset: int = 0
    """Byte offset (in the uncompressed input) just after this chunk."""


def _line_documents(chunk: Chunk) -> pa.Table:
    """The non-blank lines of a JSON-lines chunk as (doc_id, line, byte_offset, doc) rows.

    The documents share the chunk's buffer (no copy): each ``doc`` keeps its line's newline,
    which JSON ignores and reject texts strip. Input that is not UTF-8 is decoded with
    replacement characters, line by line, so line numbers and offsets stay those of the input.
    Nothing the size of the chunk is allocated here (no decoded copy): fresh memory costs more
    to fault in than checking the bytes.
    """
    data = chunk.data
    assert data is not None
    starts = np.array(chunk.line_starts, np.int64)
    offsets = np.append(starts, len(data))
    docs = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        docs.validate(full=True)
    except pa.ArrowInvalid:
        lines = [data[begin:end].decode("utf-8", "replace").encode() for begin, end in itertools.pairwise(offsets)]
        text_offsets = np.array([0, *itertools.accumulate(map(len, lines))], np.int64)
        docs = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(text_offsets), pa.py_buffer(b"".join(lines)))
    start = chunk.end_offset - len(data)
    table = pa.table({
        "line": pa.array(np.arange(chunk.first_line, chunk.first_line + len(starts), dtype=np.int64)),
        "byte_offset": pa.array(starts + start),
        "doc": docs,
    })
    # Only a line starting with whitespace can be blank.
    blank = [
        index for index in np.flatnonzero(np.isin(np.frombuffer(data, np.uint8)[starts], WHITESPACE_BYTES))
        if not data[offsets[index] : offsets[index + 1]].strip()
    ]
    if blank:
        keep = np.ones(len(starts), bool)
        keep[blank] = False
        table = table.filter(pa.array(keep))
    return table.add_column(0, "doc_id", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))


def register_chunk(cur: duckdb.DuckDBPyConnection, chunk: Chunk, view: str) -> None:
    """Register ``view`` (doc_id, line, byte_offset, doc) on ``cur``: the chunk's non-blank documents."""
    if chunk.data is not None:
        rows = _line_documents(chunk)
    else:
        rows = pa.table(
            {
                "doc_id": pa.array(range(1, len(chunk.documents) + 1), pa.int64()),
                "line": pa.array([doc[0] for doc in chunk.documents], pa.int64()),
                "byte_offset": pa.array([doc[1] for doc in chunk.documents], pa.int64()),
                "doc": pa.array([doc[2] for doc in chunk.documents], pa.large_string()),
            }
        )
    cur.register(view, rows)


def open_input(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it is gzip (by content, whatever its name)."""
    handle = path.open("rb")
    if handle.read(2) == GZIP_MAGIC:
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle)  # type: ignore[return-value]
    handle.seek(0)
    return handle


def _is_single_document(head: bytes, whole: bool) -> bool:
    """Whether JSON input is one (pretty-printed) document rather than JSON lines.

    JSON lines when the first line is a JSON value by itself; otherwise one document when the
    first line only opens it (``{``) or the whole input parses as one value. A malformed first
    line of a JSON-lines file thus becomes one reject, not the loss of the file.
    """
    first_line = head.split(b"\n", 1)[0]
    try:
        json.loads(first_line)
        return False
    except ValueError:
        pass
    if first_line.strip() in (b"{", b"["):
        return True
    if whole:
        try:
            json.loads(head)
            return True
        except ValueError:
            return False
    return False


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The chunks of one input file, in order (see the module doc for the formats)."""
    with open_input(path) as stream:
        head = stream.read(chunk_bytes)
        stripped = head.lstrip()
        if not stripped:
            return
        if stripped[:1] in (b"{", b"["):
            if _is_single_document(head, whole=len(head) < chunk_bytes):
                data = head + stream.read()
                yield Chunk(documents=[(1, None, data.decode("utf-8", "replace"))], end_offset=len(data))
            else:
                yield from json_line_chunks(stream, head, 0, 1, chunk_bytes, final=True)
            return
        data = head + stream.read()
    yield protobuf_chunk(data)


def _line_starts(data: bytes | bytearray) -> list[int]:
    """Where each line of ``data`` starts: one search through the bytes, nothing allocated beside
    the list (fresh memory costs more to fault in than the search itself)."""
    starts, newline = [0], data.find(b"\n")
    while newline >= 0:
        starts.append(newline + 1)
        newline = data.find(b"\n", newline + 1)
    if starts[-1] == len(data):
        starts.pop()  # nothing after the last newline
    return starts


def json_line_chunks(
    stream: BinaryIO, head: bytes, offset: int, first_line: int, chunk_bytes: int, final: bool
) -> Iterator[Chunk]:
    """Chunks of whole lines from ``stream`` (``head`` already read), starting at byte ``offset``.

    With ``final`` a last line without its newline is a document; without it (follow mode) it is
    left unread, so the next poll reads it whole. A chunk's bytes are read once into its own
    buffer, which becomes its documents (only the part line after its last newline is copied).
    """
    pending, eof = bytearray(head), False
    while True:
        if not eof and (len(pending) < chunk_bytes or pending.rfind(b"\n") < 0):
            more = stream.read(max(chunk_bytes - len(pending), 0) or chunk_bytes)
            if more:
                pending += more
                continue
            eof = True
        cut = pending.rfind(b"\n")
        if cut < 0:
            if not (final and pending):
                return
            cut = len(pending) - 1
        body, pending = pending, pending[cut + 1 :]
        del body[cut + 1 :]
        line_starts = _line_starts(body)
        yield Chunk(data=body, first_line=first_line, line_starts=line_starts, end_offset=offset + len(body))
        offset += len(body)
        first_line += len(line_starts)  # a body without its last newline is the input's end
        if eof and not pending:
            return


def _messages(data: bytes) -> list[tuple[int, bytes]] | None:
    """The frames of a length-delimited stream, or None when ``data`` is not exactly such a stream."""
    from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

    frames, position = [], 0
    try:
        while position < len(data):
            size, start = _DecodeVarint(data, position)
            if start + size > len(data):
                return None
            frames.append((position, data[start : start + size]))
            position = start + size
    except Exception:  # a truncated varint: not a delimited stream
        return None
    return frames


def protobuf_chunk(data: bytes) -> Chunk:
    """Decode OTLP protobuf: one TracesData / ExportTraceServiceRequest, or a length-delimited stream."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    def decode(payload: bytes) -> TracesData | None:
        message = TracesData()
        try:
            message.ParseFromString(payload)
        except DecodeError:
            return None
        return message

    # A single message starts with field 1 (resource_spans, length-delimited): byte 0x0A.
    single = decode(data) if data[:1] == b"\n" else None
    frames = [(0, data)] if single is not None and single.resource_spans else _messages(data)
    chunk = Chunk(end_offset=len(data))
    if not frames:
        chunk.rejects.append(
            ("not OTLP traces: neither JSON nor a protobuf TracesData", f"<{len(data)} bytes, binary, not kept>", 0)
        )
        return chunk
    for offset, payload in frames:
        message = single if payload is data else decode(payload)
        if message is None:
            chunk.rejects.append(
                ("protobuf message does not decode as TracesData", f"<{len(payload)} bytes, binary, not kept>", offset)
            )
            continue
        chunk.documents.append((None, offset, json_format.MessageToJson(message, indent=None)))
    return chunk


def documents_from_bytes(body: bytes, content_type: str) -> Chunk:
    """One OTLP/HTTP request body (already gunzipped) as a chunk: JSON or protobuf."""
    if content_type == "application/json":
        return Chunk(documents=[(None, 0, body.decode("utf-8", "replace"))], end_offset=len(body))
    return protobuf_chunk(body)


__all__ = ["Chunk", "register_chunk", "read_chunks", "json_line_chunks", "protobuf_chunk", "documents_from_bytes"]
