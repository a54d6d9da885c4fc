"""``python -m modelcheck``: see :mod:`modelcheck._cli`."""

from __future__ import annotations

import sys

from modelcheck._cli import main

if __name__ == "__main__":
    sys.exit(main())
