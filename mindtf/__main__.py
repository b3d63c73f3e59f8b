"""``python -m mindtf ...``: see :mod:`mindtf.cli.main`."""
import sys

from mindtf.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
