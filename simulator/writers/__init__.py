"""One writer per output format: OTLP/JSON lines, backlog snapshots, CSV exports, X12."""
