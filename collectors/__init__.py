"""Collectors: one module per source kind, shaped like OpenTelemetry Collector receivers.

Each collector has a pydantic config, parses at the boundary, normalises to the canonical schema
(``r2p.schema``) and hands its rows to one landing writer (``r2p.landing``). A bad record becomes
a reject; the collector never opens the warehouse.
"""
