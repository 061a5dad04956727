"""traces collector (being written)."""

SOURCE = "traces"
COMMANDS: list = []
