"""``python -m gemrec``: the command line (what torchrun starts with ``-m gemrec``)."""

import sys

from gemrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
