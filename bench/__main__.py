"""Run one benchmark: ``python -m bench NAME [--key value ...]``; its figures are the last line, as JSON.

Each benchmark is a module ``bench/<NAME>.py`` with ``run(**options) -> dict``; options given on the
command line as ``--key value`` are passed through as strings, so a benchmark can be run smaller.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    names = sorted(module.name for module in pkgutil.iter_modules(bench.__path__) if not module.name.startswith("_"))
    if not argv or argv[0] not in names:
        print(f"usage: python -m bench NAME [--key value ...]; NAME is one of: {', '.join(names)}", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if len(rest) % 2 or not all(key.startswith("--") for key in rest[::2]):
        print("options come in pairs: --key value", file=sys.stderr)
        return 2
    options = {key[2:].replace("-", "_"): value for key, value in zip(rest[::2], rest[1::2])}
    figures = importlib.import_module(f"bench.{name}").run(**options)
    print(json.dumps({"bench": name, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
