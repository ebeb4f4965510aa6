"""Register the test channel models under test-only names for every fusion test."""

from __future__ import annotations

import pytest

from gemrec.models import MODELS


@pytest.fixture(autouse=True)
def _register_test_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "test_itemcos", "tests.fusion.channels:ItemCosine")
    monkeypatch.setitem(MODELS, "test_validspy", "tests.fusion.channels:ValidationSpy")
