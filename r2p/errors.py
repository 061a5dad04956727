"""Errors a user can cause: the CLI prints their message as one line and exits 2."""


class UserError(Exception):
    """A mistake in the user's input or environment (a missing file, a bad option, a held lock)."""
