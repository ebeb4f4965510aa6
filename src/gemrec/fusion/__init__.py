"""Model fusion: a recommender that combines fitted channel recommenders (``--model fusion``)."""

from gemrec.fusion.channels import DEFAULT_CHANNELS
from gemrec.fusion.fusion import Fusion
from gemrec.fusion.lists import fuse_lists
from gemrec.fusion.tuning import METHODS

__all__ = ["DEFAULT_CHANNELS", "METHODS", "Fusion", "fuse_lists"]
