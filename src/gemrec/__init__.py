"""gemrec: graph-embedding recommendations from shop behaviour logs."""

__version__ = "0.1.0"
