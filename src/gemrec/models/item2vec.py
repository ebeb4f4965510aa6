"""EGES-style item embeddings: weighted random walks, skip-gram, side-information fusion.

The model follows Wang et al., *Billion-scale Commodity Embedding for E-commerce Recommendation in
Alibaba* (KDD 2018): an item-item graph is built from co-behaviour, weighted random walks over it
become "sentences" (:mod:`gemrec.models._walks`), a skip-gram with negative sampling learns from
them, and each item's vector is an attention-weighted sum of its own embedding and the embeddings
of its side information (category, brand, price bucket, ...; :mod:`gemrec.models._side_info`). The
embedding module (:mod:`gemrec.models._skipgram`) is trained by the loop the torch models share
(:mod:`gemrec.models.training`): early stopping on a validation split, checkpoints and resume. A
brand-new item described only by side information gets a vector from the side-information
embeddings alone (cold start), so it can be recommended and has similar items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.models._device import check_device, resolve_device
from gemrec.models._side_info import (
    SideCodes,
    SideField,
    align_features,
    as_frame,
    cold_attention,
    fields_from_state,
    fields_state,
    fused_vectors,
    learn_fields,
    side_only_vectors,
)
from gemrec.models._walks import (
    RandomWalker,
    auto_walks,
    cooccurrence_hops,
    draw_walks,
    keyed_draws,
    noise_distribution,
    noise_table,
    random_walks,
    resolve_graph,
    sequence_graph,
    skipgram_pairs,
    uniform_from_bits,
    walk_graph,
)
from gemrec.models.base import EmbeddingRecommender, ModelTags, State
from gemrec.models.training import check_lr_decay
from gemrec.ranking import topk

__all__ = [
    "AUTO_POPULARITY_WEIGHT",
    "POPULARITY_WEIGHTS",
    "Item2Vec",
    "cooccurrence_hops",
    "random_walks",
    "sequence_graph",
    "skipgram_pairs",
]

#: the prior weights ``popularity_weight="auto"`` chooses from on the validation split
POPULARITY_WEIGHTS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
#: the weight epochs are validated with, and ``"auto"``'s value without a validation split
AUTO_POPULARITY_WEIGHT = 0.5


class Item2Vec(EmbeddingRecommender):
    """EGES item embeddings (graph walks + skip-gram + side-information attention).

    Parameters
    ----------
    embedding_dim : int
        Size ``d`` of every embedding. 128 ranked better than 64 on the larger catalogues
        (Gowalla's 40,981 items, Amazon Scientific's) and no worse on MovieLens-1M's 3,043, at
        about twice the training time (docs/benchmarks/item2vec.md).
    epochs : int
        Passes of skip-gram training; fresh walks are drawn for every epoch.
    lr_decay : float
        Multiplicative decay of the step size per epoch: epoch ``e`` (from 1) uses
        ``lr * lr_decay^(e-1)``; 1 keeps it constant.
    walk_length : int
        Items per random walk.
    walks_per_item : int or "auto"
        Walks started from every item that has graph neighbours, per epoch. ``"auto"``
        (``walks_per_item_`` after fitting): enough walks that an epoch visits about 10 items
        per training interaction, between 5 and 100 (:func:`~gemrec.models._walks.auto_walks`).
        Validation Recall@20 kept rising with the walks: MovieLens-1M (235 interactions per item)
        .1612 with 5 walks, .1857 with 50, .1866 with 100 (it gets 100), .1905 with 200; Gowalla
        (18 per item) .1392 with 5, .1453 with 10, .1515 with 20 (it gets 18). Fit time grows
        with the walks; the cap bounds an epoch by the items on dense catalogues.
    window : int or "auto"
        Skip-gram context: items at most this many steps apart in a walk form pairs. ``"auto"``
        (``window_`` after fitting): 1 on the co-occurrence graph, whose every step already goes
        item -> user -> item, and 3 on the sequence graph.
    negatives : int
        Negative samples per pair, drawn from the walk-frequency distribution to the 3/4 power.
    lr : float
        Step size of sparse Adam (on every embedding table and the attention logits).
    pairs_per_batch : int
        (target, context) pairs per optimisation step.
    graph : {"auto", "sequence", "cooccurrence"}
        The item-item graph. ``"sequence"``: consecutive items of each user's time-ordered history
        (needs timestamps; see :func:`sequence_graph`). ``"cooccurrence"``: items sharing a user,
        weighted ``sum_u x_ui x_uj / d_u`` (walked as item -> user -> item). ``"auto"``: sequence
        when the interactions carry timestamps, else co-occurrence.
    session_gap_hours : float or None
        Sequence graph only: no edge between consecutive items further apart than this.
    side_features : sequence of str or None
        Columns of ``item_features`` used as side information. None picks automatically every
        column except ``item``/``item_id`` and boolean flags (such as ``available``) that is
        either a float column (bucketed into ``price_buckets`` quantile buckets) or has between
        2 and ``n_items / 2`` distinct values (id-like columns such as titles are skipped).
        Cells may be lists (multi-valued fields, mean-pooled).
    price_buckets : int
        Quantile buckets for numeric side features.
    text_clusters : int
        0: no text field. Otherwise the items' text (:func:`gemrec.text.item_texts`) is a side
        field ``text_cluster``: the nearest of this many k-means centroids of their centred
        sentence embeddings (``text_centroids_``, ``text_mean_``); a new item's text is assigned
        the same way. Needs
        ``gemrec[text]``.
    cold_dropout : float
        Probability that a training target loses its own item embedding and is represented by its
        side information alone (with the global field attention used for new items). This trains
        exactly the representation :meth:`embed_new_items` produces.
    half_life_days : float or None
        User vectors weight each item by ``2 ** (-age / half_life)``, the age measured from the
        user's latest interaction (needs timestamps). None: plain weighted mean.
    popularity_weight : float or "auto"
        Weight ``beta`` of the item's log prior in user scores (see Notes); 0 ranks by the vectors
        alone. ``"auto"`` (``popularity_weight_`` after fitting): given a validation split, the
        weight of :data:`POPULARITY_WEIGHTS` with the best validation Recall@``eval_k`` for the
        best epoch's vectors (epochs are validated with 0.5, and a refit on train + valid keeps
        the chosen weight); without one, 0.5. How much the prior should count depends on the
        data: validation chose 0.25 on MovieLens-1M and 0.75 on Gowalla.
    n_threads : int
        Torch threads while training (restored afterwards).
    patience : int
        Validations without improvement before stopping (only when ``valid`` is given to ``fit``).
    eval_every : int
        Validate every this many epochs (and after the last one).
    eval_k : int
        Cut-off of the monitored validation Recall@K (NDCG@K is logged too).
    seed : int
        Seeds walks, initialisation, negatives and batching; a fit is reproducible.
    checkpoint_dir : str, optional
        Checkpoint after every epoch; a later ``fit`` with the same data, side information and
        hyperparameters resumes from it.
    log_dir : str, optional
        TensorBoard log directory (loss, validation recall and NDCG).
    progress : bool
        Progress bar with ETA on stderr.
    device : {"auto", "cpu", "cuda"} or "cuda:N"
        Where the embedding tables and the optimiser state live (``"auto"``: CUDA when torch sees
        a GPU). Walks, pairs and negatives are drawn on the CPU, so the device does not change
        which samples are drawn.

    Attributes
    ----------
    item_embeddings_ : ndarray of float32, shape (n_items, d + 1)
        ``[H_v, log P_n(v)]``: the fused EGES vector (items that the walks never reached get
        their side-only vector, or zeros without side information) and the item's log prior.
    user_embeddings_ : ndarray of float32, shape (n_users, d + 1)
        ``[p_u, beta]``: weighted (optionally time-decayed) mean of the user's ``H`` vectors and
        ``popularity_weight``, so ``user_embeddings_ @ item_embeddings_.T`` is the score.
    vectors_ : ndarray of float32, shape (n_items, d)
        ``H`` alone; ``similar_items`` is the cosine of these.
    cold_log_prior_ : float
        Log prior given to items never walked and to new items: the median over walked items.
    attention_ : ndarray of float32, shape (n_items, 1 + n_fields)
        Per-item softmax weights of [own embedding, field 1, ...]; zero for missing fields.
    field_attention_ : ndarray of float32, shape (n_fields,)
        Softmax weights of the fields for an item known only by its side information.
    side_fields_ : list of str
        Names of the side-information fields used.
    popularity_weight_ : float
        The prior weight in use: ``popularity_weight``, or the value ``"auto"`` resolved to.
    popularity_validation_ : dict
        With ``popularity_weight="auto"`` and a validation split: validation Recall@``eval_k`` of
        each weight tried (empty otherwise).
    window_ : int
        The skip-gram window used (``window`` with ``"auto"`` resolved).
    walks_per_item_ : int
        Walks per start item and epoch (``walks_per_item`` with ``"auto"`` resolved).
    history_ : list of dict
        Per-epoch loss, seconds and validation metrics.
    best_epoch_ : int
        The epoch whose embeddings were kept (the last one without validation).

    Notes
    -----
    Item ``v`` with side values ``s_v^1..s_v^n`` (``s_v^0 = v``) has the vector

    .. math:: H_v = \\sum_{j=0}^{n} \\frac{e^{a_v^j}}{\\sum_{k} e^{a_v^k}} W^j_{s_v^j}

    with ``a_v`` learned per item (missing fields are left out of the softmax). Skip-gram with
    negative sampling maximises, over walk pairs ``(v, u)`` and negatives ``u'``,

    .. math:: \\log\\sigma(H_v^\\top H_u) + \\sum_{u'} \\log\\sigma(-H_v^\\top H_{u'})

    The context side uses the same fused vectors (tied embeddings) rather than a second table:
    the one space then serves similarity, user scoring and cold start alike, and ``H_u^T H_v``
    is the co-occurrence score the model was trained on. A new item has no ``W^0`` row and no
    ``a_v``: its vector is ``sum_{j>=1} softmax(g)_j W^j_{s^j}`` with a global field attention
    ``g`` trained on the ``cold_dropout`` share of targets. Users are
    ``p_u = sum_i c_ui H_i / sum_i c_ui`` with ``c_ui = x_ui 2^{-age_ui / half_life}`` and

    .. math:: \\mathrm{score}(u, i) = p_u^\\top H_i + \\beta \\log P_n(i)

    with ``P_n`` the negative-sampling distribution (walk frequency to the 3/4). At the optimum
    of SGNS, ``H_j^T H_i = log P(i | j) - log P_n(i) - log k`` (Levy & Goldberg, 2014), so
    ``beta = 1`` ranks by the conditional probability and ``beta = 0`` by the PMI-like
    association. Measured effects of these choices: ``docs/benchmarks/item2vec.md``.

    The noise distribution ``P_n`` and the set of items the walks reach are taken from the first
    epoch's walks, drawn once before training from ``seed`` (so a resumed run uses the same).
    Training runs in :func:`gemrec.models.training.train_loop`: with ``valid`` it validates every
    ``eval_every`` epochs, stops after ``patience`` validations without improvement and keeps the
    best epoch's embeddings.

    Side information reaches the model as ``fit(..., side=SideInformation(item_features=table))``
    (``gemrec train`` passes the dataset's item table): a DataFrame with one row per item,
    aligned with internal item ids (by its ``item`` column when present, else by position).

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> from gemrec.data.side import SideInformation
    >>> x = Interactions.from_arrays([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 3])
    >>> feats = pd.DataFrame({"category": ["a", "a", "b", "b"]})
    >>> m = Item2Vec(embedding_dim=8, epochs=1, walks_per_item=2, seed=0, progress=False)
    >>> m = m.fit(x, side=SideInformation(item_features=feats))
    >>> new = m.embed_new_items({"category": "a"})  # (1, embedding_dim + 1)
    >>> new.shape
    (1, 9)
    >>> ids, scores = m.similar_to_vectors(new, k=2)  # catalogue neighbours of the new item
    >>> ids.shape
    (1, 2)
    """

    name = "item2vec"
    tags: ClassVar[ModelTags] = ModelTags(
        validation="early_stopping",
        side_information=frozenset({"item_features"}),
        timestamps=True,
        embeddings=True,
        inner_product=True,
        item_bias=True,
        fold_in=True,
        new_item_embedding=True,
        progress=True,
        fit_requires=("torch",),
        distributed=True,
    )

    def __init__(
        self,
        *,
        embedding_dim: int = 128,
        epochs: int = 10,
        lr_decay: float = 0.8,
        walk_length: int = 10,
        walks_per_item: int | str = "auto",
        window: int | str = "auto",
        negatives: int = 1,
        lr: float = 0.01,
        pairs_per_batch: int = 4096,
        graph: str = "auto",
        session_gap_hours: float | None = None,
        side_features: Sequence[str] | None = None,
        price_buckets: int = 10,
        text_clusters: int = 0,
        cold_dropout: float = 0.1,
        half_life_days: float | None = None,
        popularity_weight: float | str = "auto",
        n_threads: int = 1,
        patience: int = 5,
        eval_every: int = 1,
        eval_k: int = 20,
        seed: int = 0,
        checkpoint_dir: str | None = None,
        log_dir: str | None = None,
        progress: bool = True,
        device: str = "auto",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.lr_decay = lr_decay
        self.walk_length = walk_length
        self.walks_per_item = walks_per_item
        self.window = window
        self.negatives = negatives
        self.lr = lr
        self.pairs_per_batch = pairs_per_batch
        self.graph = graph
        self.session_gap_hours = session_gap_hours
        self.side_features = side_features
        self.price_buckets = price_buckets
        self.text_clusters = text_clusters
        self.cold_dropout = cold_dropout
        self.half_life_days = half_life_days
        self.popularity_weight = popularity_weight
        self.n_threads = n_threads
        self.patience = patience
        self.eval_every = eval_every
        self.eval_k = eval_k
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.log_dir = log_dir
        self.progress = progress
        self.device = device

    # ----------------------------------------------------------------- validation
    def _validate_params(self) -> None:
        check_device(self.device)
        for name in (
            "embedding_dim",
            "epochs",
            "walk_length",
            "pairs_per_batch",
            "price_buckets",
            "n_threads",
            "patience",
            "eval_every",
            "eval_k",
        ):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise ParameterError.invalid(name, "a positive integer", v)
        walks = self.walks_per_item
        if walks != "auto" and (
            not isinstance(walks, int | np.integer) or isinstance(walks, bool) or walks < 1
        ):
            raise ParameterError.invalid("walks_per_item", "a positive integer or 'auto'", walks)
        if self.window != "auto" and (
            not isinstance(self.window, int | np.integer)
            or isinstance(self.window, bool)
            or self.window < 1
        ):
            raise ParameterError.invalid("window", "a positive integer or 'auto'", self.window)
        check_lr_decay(self.lr_decay)
        if self.walk_length < 2:
            raise ParameterError.invalid("walk_length", "an integer >= 2", self.walk_length)
        if not isinstance(self.negatives, int | np.integer) or self.negatives < 0:
            raise ParameterError.invalid("negatives", "a non-negative integer", self.negatives)
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ParameterError.invalid("lr", "a positive number", self.lr)
        if self.graph not in ("auto", "sequence", "cooccurrence"):
            raise ParameterError.invalid(
                "graph", "one of 'auto', 'sequence', 'cooccurrence'", self.graph
            )
        beta = self.popularity_weight
        if beta != "auto" and (
            isinstance(beta, bool) or not isinstance(beta, int | float) or beta < 0
        ):
            raise ParameterError.invalid(
                "popularity_weight", "a non-negative number or 'auto'", beta
            )
        for name in ("session_gap_hours", "half_life_days"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int | float) or not v > 0):
                raise ParameterError.invalid(name, "a positive number or None", v)
        if not isinstance(self.cold_dropout, int | float) or not 0 <= self.cold_dropout < 1:
            raise ParameterError.invalid("cold_dropout", "a number in [0, 1)", self.cold_dropout)
        if self.side_features is not None and (
            isinstance(self.side_features, str)
            or not all(isinstance(c, str) for c in self.side_features)
        ):
            raise ParameterError.invalid(
                "side_features", "a list of column names or None", self.side_features
            )
        if (
            isinstance(self.text_clusters, bool)
            or not isinstance(self.text_clusters, int)
            or self.text_clusters < 0
        ):
            raise ParameterError.invalid(
                "text_clusters", "a non-negative integer", self.text_clusters
            )
        if not isinstance(self.seed, int | np.integer):
            raise ParameterError.invalid("seed", "an integer", self.seed)
        for name in ("checkpoint_dir", "log_dir"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ParameterError.invalid(name, "a directory path or None", v)
        if not isinstance(self.progress, bool):
            raise ParameterError.invalid("progress", "a bool", self.progress)

    # ----------------------------------------------------------------- fitting

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(self.n_threads))
        try:
            self._train(interactions, valid)
        finally:
            torch.set_num_threads(before)

    def _train(self, interactions: Interactions, valid: Interactions | None) -> None:
        import torch

        from gemrec.eval.evaluate import validation
        from gemrec.models._skipgram import EGESEmbedding, skipgram_loss
        from gemrec.models.training import decaying_lr, fit_embeddings, minibatches

        n_items, d = interactions.n_items, int(self.embedding_dim)
        fields, codes = self._side_information(n_items)
        graph = resolve_graph(interactions, self.graph)
        hops, starts = walk_graph(interactions, graph, self.session_gap_hours)
        walker = RandomWalker(hops)
        self.walks_per_item_ = (
            auto_walks(interactions.matrix.nnz, len(starts), int(self.walk_length))
            if self.walks_per_item == "auto"
            else int(self.walks_per_item)
        )
        if self.window == "auto":
            self.window_ = 1 if graph == "cooccurrence" else 3
        else:
            self.window_ = int(self.window)
        auto_beta = self.popularity_weight == "auto"
        self.popularity_weight_ = (
            AUTO_POPULARITY_WEIGHT if auto_beta else float(self.popularity_weight)
        )
        self.popularity_validation_: dict[float, float] = {}
        self.chosen_params_: dict[str, float] = {}
        validate = validation(valid, self.eval_k)

        def walks(rng: np.random.Generator) -> np.ndarray:
            return draw_walks(walker, starts, self.walks_per_item_, int(self.walk_length), rng)

        # the first epoch's walks (the loop's generator starts from the same seed) fix the noise
        # distribution and the items training reaches, identically in a resumed run
        first = walks(np.random.default_rng(self.seed))
        prior = noise_distribution(first, n_items)
        walked = np.bincount(skipgram_pairs(first, self.window_)[0], minlength=n_items) > 0
        del first
        log_prior = self._log_prior(prior)
        noise = noise_table(prior, max(1_000_000, 20 * n_items))

        device = resolve_device(self.device)
        net = EGESEmbedding(n_items, d, [f.size for f in fields])
        net.reset_parameters(torch.Generator().manual_seed(int(self.seed)))
        net.to(device)
        side_idx = [torch.from_numpy(i).to(device) for i in codes.idx]
        side_weights = [torch.from_numpy(w).to(device) for w in codes.weights]
        has = torch.from_numpy(codes.has).to(device)
        can_drop: np.ndarray = np.asarray(codes.has.any(axis=1))
        dropout = float(self.cold_dropout) if fields else 0.0
        k = int(self.negatives)

        def draw_epoch(rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
            targets, contexts = skipgram_pairs(walks(rng), self.window_)
            order = rng.permutation(len(targets))
            # each pair's negatives and dropout come from its own key (see keyed_draws): the
            # same whichever worker or batch the pair lands in
            keys = rng.integers(0, 2**63 - 1, size=len(targets), dtype=np.int64)
            pairs = [targets[order].astype(np.int64), contexts[order].astype(np.int64), keys]
            return minibatches(pairs, int(self.pairs_per_batch))

        def batch_loss(batch: tuple[np.ndarray, ...]) -> torch.Tensor:
            t, c, keys = batch
            n = len(t)
            bits = keyed_draws(keys, k + 1)
            negatives = noise[(bits[:, :k] % np.uint64(max(len(noise), 1))).astype(np.int64)]
            # targets, contexts and negatives go through the fused embedding in one pass
            items_np = np.concatenate([t, c, negatives.ravel()])
            items = torch.from_numpy(items_np).to(device)
            cold = None
            if fields:  # always given, so that every table takes part in every step
                cold_np = np.zeros(len(items_np), dtype=bool)
                if dropout > 0:
                    cold_np[:n] = (uniform_from_bits(bits[:, k]) < dropout) & can_drop[t]
                cold = torch.from_numpy(cold_np).to(device)
            side = ([i[items] for i in side_idx], [w[items] for w in side_weights], has[items])
            h = net(items, *side, cold)
            return skipgram_loss(h[:n], h[n : 2 * n], h[2 * n :].view(n, k, d))

        def export() -> None:
            self._export(*net.numpy_weights(), codes, walked, log_prior, interactions)

        fit_embeddings(
            self,
            interactions,
            validate,
            module=net,
            optimizer=torch.optim.SparseAdam(list(net.parameters()), lr=float(self.lr)),
            draw_epoch=draw_epoch,
            batch_loss=batch_loss,
            export=export,
            lr_schedule=decaying_lr(self.lr, self.lr_decay),
            extra_fingerprint={"side_information": _describe(fields, codes)},
        )
        if auto_beta and validate is not None:
            self._choose_popularity_weight(validate)

    def _choose_popularity_weight(self, validate: Callable[[Any], Mapping[str, float]]) -> None:
        """Set ``popularity_weight_`` to the weight with the best validation recall."""
        monitor = f"recall@{self.eval_k}"
        for beta in POPULARITY_WEIGHTS:
            self.user_embeddings_[:, -1] = beta
            self.popularity_validation_[beta] = float(validate(self)[monitor])
        best = max(POPULARITY_WEIGHTS, key=lambda b: self.popularity_validation_[b])
        self.popularity_weight_ = float(best)
        self.user_embeddings_[:, -1] = self.popularity_weight_
        # a refit on train + valid has no validation split: it keeps this choice
        self.chosen_params_ = {"popularity_weight": self.popularity_weight_}

    def _side_information(self, n_items: int) -> tuple[list[SideField], SideCodes]:
        """The side-information fields (kept as ``_fields``) and every item's codes."""
        self.text_centroids_ = np.zeros((0, 0), np.float32)
        self.text_mean_ = np.zeros(0, np.float32)
        if self._side.item_features is None:
            self._fields = []
            return [], SideCodes.encode([], pd.DataFrame(index=range(n_items)))
        table = align_features(self._side.item_features, n_items)
        names = self.side_features
        if self.text_clusters:
            from gemrec.text import embed_item_texts, item_texts, text_centroids

            texts = item_texts(table)
            if any(texts):
                embedded = embed_item_texts(texts)
                self.text_centroids_, self.text_mean_ = text_centroids(
                    embedded, self.text_clusters, self.seed
                )
                table = self._with_text_cluster(table, embedded)
                names = None if names is None else [*names, "text_cluster"]
        self._fields = learn_fields(table, names, int(self.price_buckets))
        return self._fields, SideCodes.encode(self._fields, table)

    def _with_text_cluster(
        self, table: pd.DataFrame, embedded: np.ndarray | None = None
    ) -> pd.DataFrame:
        """``table`` with a ``text_cluster`` column (the nearest of ``text_centroids_``)."""
        from gemrec.text import item_texts, nearest_centroid

        if embedded is None:
            from gemrec.text import TextEncoder

            embedded = TextEncoder().encode(item_texts(table))
        clusters = nearest_centroid(embedded, self.text_centroids_, self.text_mean_)
        return table.assign(text_cluster=clusters)

    def _log_prior(self, prior: np.ndarray) -> np.ndarray:
        """``log P_n`` per item; items the walks never reach get ``cold_log_prior_``."""
        # the median prior of the walked items is neutral, so that a never-walked (or new) item's
        # side-information match decides; the rarest item's prior would bury it
        positive = prior[prior > 0]
        self.cold_log_prior_ = float(np.median(np.log(positive))) if len(positive) else 0.0
        log_prior = np.full(len(prior), self.cold_log_prior_, dtype=np.float64)
        log_prior[prior > 0] = np.log(positive)
        return log_prior

    def _export(
        self,
        own: np.ndarray,
        logits: np.ndarray | None,
        tables: list[np.ndarray],
        g: np.ndarray,
        codes: SideCodes,
        walked: np.ndarray,
        log_prior: np.ndarray,
        interactions: Interactions,
    ) -> None:
        """Set the learned arrays from the module's weights (see ``EGESEmbedding.numpy_weights``).

        Items no walk reached get their side-only vector (zeros without side information).
        """
        self.side_tables_ = tables
        if logits is None:
            vectors, attention = own, np.ones((len(own), 1), np.float32)
            self.field_attention_ = np.zeros(0, np.float32)
        else:
            vectors, attention = fused_vectors(own, logits, tables, codes)
            e = np.exp(g.astype(np.float64) - g.max())
            self.field_attention_ = (e / e.sum()).astype(np.float32)
        cold_rows = np.flatnonzero(~walked)
        attention[cold_rows] = 0.0
        if logits is None:
            vectors[cold_rows] = 0.0
        else:
            cold_codes = codes.rows(cold_rows)
            vectors[cold_rows] = side_only_vectors(tables, self.field_attention_, cold_codes)
            attention[cold_rows, 1:] = cold_attention(self.field_attention_, cold_codes.has)
        self.attention_ = attention
        self.item_embeddings_ = np.hstack([vectors, log_prior[:, None]]).astype(np.float32)
        self.user_embeddings_ = self._user_vectors(interactions)

    # ----------------------------------------------------------------- helpers
    def _user_vectors(self, interactions: Interactions) -> np.ndarray:
        x = sp.csr_matrix(interactions.matrix, dtype=np.float32, copy=True)
        if self.half_life_days is not None and interactions.timestamps is not None:
            ts = sp.csr_matrix(interactions.timestamps, dtype=np.float64)
            if ts.nnz == x.nnz and np.array_equal(ts.indices, x.indices):
                t = np.nan_to_num(ts.data, nan=-np.inf)
                deg = np.diff(ts.indptr)
                latest = np.zeros(len(deg))
                nz = deg > 0
                latest[nz] = np.maximum.reduceat(t, ts.indptr[:-1][nz])
                age_days = (np.repeat(latest, deg) - t) / 86400.0
                decay = np.exp2(-np.nan_to_num(age_days, posinf=0.0) / float(self.half_life_days))
                x.data = (x.data * decay).astype(np.float32)
        return self._mean_vectors(x)

    def _mean_vectors(self, x: sp.csr_matrix) -> np.ndarray:
        """Row-weighted means of the item vectors, with the prior weight appended."""
        rs = np.asarray(x.sum(axis=1)).ravel()
        rs[rs == 0] = 1.0
        u = np.asarray(sp.diags((1.0 / rs).astype(np.float32)) @ x @ self.vectors_, np.float32)
        beta = np.full((u.shape[0], 1), self.popularity_weight_, dtype=np.float32)
        return np.hstack([u, beta])

    @property
    def vectors_(self) -> np.ndarray:
        """The EGES vectors ``H`` without the log-prior column, shape (n_items, embedding_dim)."""
        return self.item_embeddings_[:, :-1]

    def queries_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """A new user is the weighted mean of the vectors of the items they touched."""
        self._check_fitted()
        return np.asarray(self._mean_vectors(sp.csr_matrix(user_items, dtype=np.float32)))

    def fold_in(self, item_vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Weighted mean of the EGES vectors, with the prior weight ``β`` as the last coordinate."""
        m = super().fold_in(np.asarray(item_vectors)[:, :-1], weights)
        return np.append(m, np.float32(self.popularity_weight_)).astype(np.float32)

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        v = self.vectors_
        norms = np.linalg.norm(v, axis=1) + 1e-12
        out: np.ndarray = (v[items] @ v.T) / norms[items, None] / norms[None, :]
        return out

    # ----------------------------------------------------------------- cold start
    @property
    def side_fields_(self) -> list[str]:
        self._check_fitted()
        return [f.name for f in self._fields]

    def embed_new_items(
        self, side_info: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """Vectors for items known only by their side information (cold start).

        Parameters
        ----------
        side_info : DataFrame, dict or list of dicts
            One row per new item with the side-information columns seen at fit time
            (:attr:`side_fields_`); a dict of scalars is one item, a dict of lists several.
            Unknown values and absent columns are ignored.

        Returns
        -------
        ndarray of float32, shape (n_new, embedding_dim + 1)
            Rows laid out like ``item_embeddings_``: ``sum_j softmax(g)_j W^j_{s^j}`` over the
            fields the item has (zero when no side value is known), then the median log prior
            of the walked items (``cold_log_prior_``). ``user_embeddings_ @ vectors.T`` scores
            the new items for every user.
        """
        self._check_fitted()
        if not self._fields:
            raise GemrecError(
                "this item2vec model was fitted without item side information "
                "(fit(..., side=SideInformation(item_features=...))): new items cannot be embedded"
            )
        frame = as_frame(side_info, "side_info")
        if len(self.text_centroids_):
            frame = self._with_text_cluster(frame)
        codes = SideCodes.encode(self._fields, frame)
        vecs = side_only_vectors(self.side_tables_, self.field_attention_, codes)
        prior = np.full((len(vecs), 1), self.cold_log_prior_, dtype=np.float32)
        return np.hstack([vecs, prior])

    def similar_to_vectors(self, vectors: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items closest (cosine) to arbitrary vectors, e.g. from :meth:`embed_new_items`.

        Parameters
        ----------
        vectors : array, shape (n, embedding_dim + 1) or (n, embedding_dim)
            The log-prior column, when present, is ignored.
        k : int

        Returns
        -------
        ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
            Internal item ids and cosine similarities; a zero vector scores 0 everywhere.
        """
        self._check_fitted()
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None, :]
        d = self.vectors_.shape[1]
        if v.ndim != 2 or v.shape[1] not in (d, d + 1):
            raise ParameterError.invalid(
                "vectors", f"an array of shape (n, {d + 1}) or (n, {d})", v.shape
            )
        v = v[:, :d]
        if not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError.invalid("k", "a positive integer", k)
        items = self.vectors_
        inorm = np.linalg.norm(items, axis=1) + 1e-12
        vnorm = np.linalg.norm(v, axis=1) + 1e-12
        sims = (v @ items.T) / vnorm[:, None] / inorm[None, :]
        return topk(np.asarray(sims, dtype=np.float32), int(k))

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> State:
        state = super()._get_state()
        state["attention_"] = self.attention_
        state["field_attention_"] = self.field_attention_
        state["cold_log_prior_"] = np.float64(self.cold_log_prior_)
        state["window_"] = np.int64(self.window_)
        state["walks_per_item_"] = np.int64(self.walks_per_item_)
        state["popularity_weight_"] = np.float64(self.popularity_weight_)
        state["text_centroids_"] = self.text_centroids_
        state["text_mean_"] = self.text_mean_
        state.update(fields_state(self._fields))
        for j, table in enumerate(self.side_tables_):
            state[f"side_table_{j}_"] = table
        return state

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        self.attention_ = np.asarray(state["attention_"], dtype=np.float32)
        self.field_attention_ = np.asarray(state["field_attention_"], dtype=np.float32)
        self.cold_log_prior_ = float(state["cold_log_prior_"])
        # files written before ``window="auto"`` existed carry the integer window as a parameter
        self.window_ = int(state["window_"]) if "window_" in state else int(self.window)
        # and before walks_per_item="auto", the integer number of walks
        self.walks_per_item_ = int(
            state["walks_per_item_"] if "walks_per_item_" in state else self.walks_per_item
        )
        # files written before popularity_weight="auto" existed carry the number as a parameter
        self.popularity_weight_ = float(
            state["popularity_weight_"] if "popularity_weight_" in state else self.popularity_weight
        )
        self.popularity_validation_ = {}
        self.text_centroids_ = np.asarray(
            state.get("text_centroids_", np.zeros((0, 0))), dtype=np.float32
        )
        self.text_mean_ = np.asarray(state.get("text_mean_", np.zeros(0)), dtype=np.float32)
        self._fields = fields_from_state(state)
        self.side_tables_ = [
            np.asarray(state[f"side_table_{j}_"], dtype=np.float32)
            for j in range(len(self._fields))
        ]


def _describe(fields: Sequence[SideField], codes: SideCodes) -> dict[str, Any]:
    """What identifies the side information of a run (for checkpoint resumption)."""
    digest = hashlib.sha256()
    for f, i, w in zip(fields, codes.idx, codes.weights, strict=True):
        digest.update(f"{f.name}:{f.kind}:{f.size}".encode())
        digest.update(np.ascontiguousarray(i).tobytes())
        digest.update(np.ascontiguousarray(w).tobytes())
    return {"fields": [f.name for f in fields], "sha256": digest.hexdigest()}
