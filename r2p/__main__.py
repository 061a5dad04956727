"""``python -m r2p`` is the ``r2p`` command."""

import sys

from r2p.cli import main

sys.exit(main())
