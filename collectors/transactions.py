"""transactions collector (being written)."""

SOURCE = "transactions"
COMMANDS: list = []
