"""``python -m gemrec``: the command line (what torchrun starts with ``-m gemrec``)."""

import sys

from gemrec.cli import main
from gemrec.models._distributed import exit_worker, worker_joined

if __name__ == "__main__":
    code = main()
    if worker_joined():  # a data-parallel worker: its group's threads must not outlive it
        exit_worker(code)
    sys.exit(code)
