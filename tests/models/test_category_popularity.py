"""Category popularity (the cold-item baseline) by hand; a random ranking's expected recall."""

import numpy as np
import pytest

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import ParameterError
from gemrec.eval.metrics import random_recall
from gemrec.models.fitting import fit_model
from gemrec.models.popularity import CategoryPopularity


def test_category_popularity_by_hand(tmp_path):
    """6 items in categories A A B B A ?; items 0-2 warm (3, 1 and 3 users), items 3-5 cold.

    Cold item 3 (B) gets B's warm mean 3; item 4 (A) A's warm mean (3 + 1) / 2 = 2; item 5
    (unknown category) the mean over all warm items (3 + 1 + 3) / 3 = 7/3.
    """
    users = [0, 1, 2, 0, 1, 2, 3]
    items = [0, 0, 0, 1, 2, 2, 2]
    train = Interactions.from_arrays(users, items, n_users=4, n_items=6)
    side = SideInformation(item_categories=np.array([0, 0, 1, 1, 0, -1], dtype=np.int32))
    model = fit_model(CategoryPopularity(), train, side=side).model
    assert model.item_scores_.tolist() == pytest.approx([3, 1, 3, 3, 2, 7 / 3])
    ids, _ = model.recommend([0], 3, exclude_seen=False, candidates=[3, 4, 5])
    assert ids.tolist() == [[3, 5, 4]]
    # without categories every cold item gets the warm mean: the id order decides
    plain = CategoryPopularity().fit(train)
    assert plain.item_scores_[3:].tolist() == pytest.approx([7 / 3] * 3)
    plain.save(tmp_path / "m")
    loaded = CategoryPopularity.load(tmp_path / "m")
    assert np.array_equal(loaded.score([1]), plain.score([1]))


def test_random_recall():
    assert random_recall(877, 20) == pytest.approx(20 / 877)
    assert random_recall(10, 20) == 1.0
    with pytest.raises(ParameterError):
        random_recall(0, 20)
