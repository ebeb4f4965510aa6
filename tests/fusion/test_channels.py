"""Channel specs: defaults, their parameters, labels; channels fit without validation data."""

from __future__ import annotations

from gemrec.data.side import SideInformation
from gemrec.fusion.channels import (
    DEFAULT_CHANNEL_PARAMS,
    DEFAULT_CHANNELS,
    ChannelSpec,
    channel_specs,
    fit_channel,
)
from tests.fusion.channels import ValidationSpy
from tests.fusion.data import clusters


def test_default_channels_and_their_parameters() -> None:
    specs = channel_specs(None, {"lightgcn": {"epochs": 2}}, has_timestamps=True)
    names = [s[0] for s in specs]
    assert names == [*DEFAULT_CHANNELS, "pop-trending"]
    params = dict((s[0], s[2]) for s in specs)
    # shipped defaults (no progress bar) merged under the caller's channel_params
    assert params["lightgcn"] == {**DEFAULT_CHANNEL_PARAMS["lightgcn"], "epochs": 2}
    assert params["lightgcn"]["progress"] is False
    assert params["pop-trending"] == {"half_life_days": 7.0}
    assert "pop-trending" not in [s[0] for s in channel_specs(None, None, has_timestamps=False)]


def test_given_channels_keep_their_order_and_dict_channels_their_own_parameters() -> None:
    specs = channel_specs(
        ["userknn", {"model": "pop", "params": {"half_life_days": 3.0}}, {"model": "pop"}],
        {"userknn": {"k": 5}, "pop": {"half_life_days": 1.0}},
        has_timestamps=True,
    )
    assert specs == [
        ChannelSpec("userknn", "userknn", {"k": 5}),
        ChannelSpec("pop(half_life_days=3.0)", "pop", {"half_life_days": 3.0}),
        ChannelSpec("pop()", "pop", {}),
    ]


def test_a_channel_is_fit_without_validation_data() -> None:
    train, _, _ = clusters()
    model = fit_channel(ChannelSpec("spy", "test_validspy", {}), train, SideInformation())
    assert isinstance(model, ValidationSpy)
    assert model.got_valid_ is False and model.fit_nnz_ == train.nnz
