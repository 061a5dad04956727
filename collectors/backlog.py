"""backlog collector (being written)."""

SOURCE = "backlog"
COMMANDS: list = []
