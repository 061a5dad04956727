"""Benchmarks: ``python -m bench NAME``. Each makes its own data and prints its figures last as one JSON line."""
