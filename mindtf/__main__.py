"""``python -m mindtf ...``: see :mod:`mindtf.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
