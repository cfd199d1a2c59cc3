"""Entry point for `python -m scangate`."""

import sys

from scangate.cli import main

if __name__ == "__main__":
    sys.exit(main())
