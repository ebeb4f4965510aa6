"""Model fusion: a recommender that combines fitted channel recommenders (``--model fusion``)."""

from gemrec.fusion.fusion import DEFAULT_CHANNELS, METHODS, Fusion, fuse_lists

__all__ = ["DEFAULT_CHANNELS", "METHODS", "Fusion", "fuse_lists"]
