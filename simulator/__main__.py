"""Entry point: ``python -m simulator [--host H --port P ...]`` or ``python -m simulator <action> ...``."""

import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
