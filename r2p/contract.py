"""The warehouse's public contract (docs/schema.md): the raw tables from r2p.schema, the marts from their models.

Regenerate with ``python -m r2p.contract > docs/schema.md``; a test fails when the file is stale.
"""

from metrics import build
from r2p import schema


def markdown() -> str:
    return schema.markdown() + "\n" + build.markdown()


if __name__ == "__main__":
    print(markdown(), end="")
