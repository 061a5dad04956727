"""The trace collector: OTLP spans from files (``r2p ingest traces``) or pushed over OTLP/HTTP (``r2p receive``).

Every input becomes OTLP/JSON documents (``otlp_input``), which DuckDB turns into canonical
``spans`` / ``span_events`` / ``span_links`` / ``rejects`` rows with business keys mapped and PHI
redacted before anything is written (``otlp_sql``, ``redaction``). Mapping and redaction come from
``collectors/defaults/traces.toml``, overridden by ``--config FILE``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import click
import duckdb

from collectors.otlp_config import TracesConfig, load_config
from collectors.otlp_input import Chunk, read_chunks, register_chunk
from collectors.otlp_sql import install, land_chunk, transform_chunk
from r2p.landing import BatchWriter

SOURCE = "traces"
TRANSFORM_THREADS = 2


def _transform(con: duckdb.DuckDBPyConnection, config: TracesConfig, chunk: Chunk, prefix: str, input_name: str) -> str:
    cursor = con.cursor()
    try:
        register_chunk(cursor, chunk, f"{prefix}_docs")
        transform_chunk(cursor, config, prefix, f"{prefix}_docs", input_name)
    finally:
        cursor.close()
    return prefix


def land_chunks(writer: BatchWriter, config: TracesConfig, chunks: Iterable[Chunk]) -> None:
    """Transform and land every chunk into one batch; keeps ``writer.input_offset`` at the last chunk's end.

    Two chunks are transformed at once, each on its own cursor (one core each; a chunk of few
    large lines does not parallelise inside DuckDB), while the main thread lands the previous one.
    Every query runs on one DuckDB thread: the chunks are the parallelism, and DuckDB's own
    threads on top of them only contend for the same cores (a tenth slower end to end).
    """
    writer.con.execute("SET threads = 1")
    install(writer.con, config)
    in_flight: deque[tuple[Future[str] | None, int]] = deque()

    def land_oldest() -> None:
        future, end_offset = in_flight.popleft()
        if future is not None:
            land_chunk(writer, config, future.result())
        writer.input_offset = end_offset

    with ThreadPoolExecutor(max_workers=TRANSFORM_THREADS) as pool:
        for index, chunk in enumerate(chunks):
            for reason, raw, byte_offset in chunk.rejects:
                writer.reject(reason, raw, byte_offset=byte_offset)
            has_documents = chunk.data is not None or bool(chunk.documents)
            future = pool.submit(_transform, writer.con, config, chunk, f"chunk{index}", writer.input_name) if has_documents else None
            in_flight.append((future, chunk.end_offset))
            while len(in_flight) > TRANSFORM_THREADS:
                land_oldest()
        while in_flight:
            land_oldest()


def collect_file(path: Path, writer: BatchWriter, config: TracesConfig) -> None:
    """Land one OTLP traces file (any format of ``otlp_input``) into ``writer``."""
    land_chunks(writer, config, read_chunks(path))


@click.command(SOURCE)
@click.argument("inputs", nargs=-1, required=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file overriding the business-key mapping and redaction rules.")
@click.option("--follow", is_flag=True, help="Keep tailing the (file-exporter) files, across rotations and restarts.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between polls with --follow.")
def ingest_traces(inputs: tuple[str, ...], config_path: Path | None, follow: bool, interval: float) -> None:
    """Land OTLP traces: JSON lines, OTLP/JSON, protobuf, gzip of any; files, folders or globs."""
    from collectors.files import expand, ingest_files
    from r2p.cli import Context, report_ingest

    context = click.get_current_context().find_object(Context)
    config = load_config(config_path)
    zone = context.landing()
    if follow:
        from collectors.otlp_follow import follow_files

        follow_files(zone, config, list(inputs), interval)
        return
    summary = ingest_files(SOURCE, expand(inputs), zone, lambda path, writer: collect_file(path, writer, config))
    report_ingest(context, summary)


@click.command("receive")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=4318, show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file overriding the business-key mapping and redaction rules.")
@click.option("--flush-seconds", type=float, default=2.0, show_default=True, help="Land a batch at least this often.")
@click.option("--max-batch-spans", type=int, default=20_000, show_default=True, help="Land a batch at this many spans.")
def receive(host: str, port: int, config_path: Path | None, flush_seconds: float, max_batch_spans: int) -> None:
    """Serve OTLP/HTTP (POST /v1/traces, protobuf or JSON) and land what arrives."""
    from collectors.otlp_receiver import serve
    from r2p.cli import Context

    context = click.get_current_context().find_object(Context)
    serve(context.landing(), load_config(config_path), host, port, flush_seconds, max_batch_spans)


COMMANDS = [ingest_traces, receive]
