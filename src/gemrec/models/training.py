"""The training loop shared by the torch models (``lightgcn``, ``mf``, ``ncf``).

The loop lives outside the ``nn.Module`` (PyG style): a model hands :func:`train_loop` a module, an
optimiser, a function that draws one epoch of mini-batches, a loss and (optionally) a validation
function. The loop owns everything else once: seeding, early stopping with restoration of the best
epoch, checkpoint and resume, TensorBoard scalars and the progress bar. Validation is a callback
(:data:`Validate`, built by :func:`gemrec.eval.validation`), so training never imports evaluation.

Resuming is exact: a checkpoint stores the module, the optimiser, the NumPy and torch random states,
the history and the early-stopping state after a completed epoch, so that a run interrupted after
epoch ``e`` and resumed computes the same epochs ``e+1, ...`` as an uninterrupted run.

torch is imported by the functions that train, never by importing this module: the samplers and
parameter checks here are NumPy, and a trained model scores without torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from gemrec._optional import require
from gemrec.errors import GemrecError, ParameterError
from gemrec.models._allocator import keep_freed_memory
from gemrec.models._distributed import (
    all_sum,
    broadcast,
    collective_errors,
    current_world,
    data_parallel,
    same_parameters,
    shard,
)
from gemrec.tracking import report_epoch

if TYPE_CHECKING:
    import torch

__all__ = [
    "COMMON_CHECKS",
    "RUN_ONLY",
    "BPRSampler",
    "TrainingResult",
    "Validate",
    "check_lr_decay",
    "check_params",
    "decaying_lr",
    "fingerprint",
    "minibatches",
    "sample_negatives",
    "train_loop",
    "watching_validation",
]

#: called with ``(epoch, metrics)`` after each validation of :func:`train_loop` in this context
_validation_observer: contextvars.ContextVar[Callable[[int, Mapping[str, float]], None] | None] = (
    contextvars.ContextVar("gemrec_validation_observer", default=None)
)


@contextlib.contextmanager
def watching_validation(
    observer: Callable[[int, Mapping[str, float]], None],
) -> Iterator[None]:
    """Call ``observer(epoch, metrics)`` after every validation of a fit run in this context.

    A hyperparameter search reports the figures to its pruner this way; an exception raised by
    ``observer`` (such as Optuna's ``TrialPruned``) ends the fit at that epoch and propagates.
    """
    token = _validation_observer.set(observer)
    try:
        yield
    finally:
        _validation_observer.reset(token)


#: parallel arrays of one mini-batch: NumPy arrays, or tensors already on the training device
Batch = tuple[Any, ...]
#: ``validate(model) -> {metric: value}`` on the model's current state, e.g. Recall@20 on the
#: validation split (:func:`gemrec.eval.validation` builds that one)
Validate = Callable[[Any], Mapping[str, float]]
logger = logging.getLogger("gemrec.training")


# --------------------------------------------------------------------------- sampling
def _edge_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys ``user * n_items + item`` of the stored entries (canonical CSR)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys = rows * np.int64(matrix.shape[1]) + matrix.indices.astype(np.int64)
    if len(keys) > 1 and np.any(keys[1:] < keys[:-1]):
        keys = np.sort(keys)
    out: np.ndarray = keys
    return out


def sample_negatives(
    users: np.ndarray,
    keys: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    max_rounds: int = 100,
) -> np.ndarray:
    """Items drawn uniformly among those each user has not interacted with (rejection sampling).

    Parameters
    ----------
    users : ndarray of int64, shape (n,)
    keys : ndarray of int64
        Sorted ``user * n_items + item`` keys of the training edges (see ``_edge_keys``).
    n_items : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    neg = rng.integers(0, n_items, size=len(users), dtype=np.int64)
    todo = np.arange(len(users))
    for _ in range(max_rounds):
        q = users[todo] * np.int64(n_items) + neg[todo]
        pos = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
        clash = keys[pos] == q if len(keys) else np.zeros(len(q), dtype=bool)
        todo = todo[clash]
        if len(todo) == 0:
            break
        neg[todo] = rng.integers(0, n_items, size=len(todo), dtype=np.int64)
    return neg


class BPRSampler:
    """Triplets ``(user, positive, negative)`` drawn as in the LightGCN reference code.

    One epoch draws as many triplets as there are training edges: a user uniformly among users
    with at least one (and not every) item, one of their items uniformly, and an item they have not
    interacted with uniformly.

    Parameters
    ----------
    matrix : csr_matrix, shape (n_users, n_items)
        Training interactions (only the sparsity pattern is used).
    """

    def __init__(self, matrix: sp.csr_matrix) -> None:
        m = sp.csr_matrix(matrix)
        m.sort_indices()
        self.indptr = m.indptr.astype(np.int64)
        self.indices = m.indices.astype(np.int64)
        self.n_items = int(m.shape[1])
        deg = np.diff(self.indptr)
        self.degree = deg
        self.users = np.flatnonzero((deg > 0) & (deg < self.n_items)).astype(np.int64)
        if len(self.users) == 0:
            raise ParameterError(
                "parameter 'interactions' has no user with at least one and fewer than all items: "
                "BPR needs a positive and a negative item per user"
            )
        self.keys = _edge_keys(m)
        self.n_edges = int(m.nnz)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` triplets; arrays of int64, shape (n,)."""
        users = self.users[rng.integers(0, len(self.users), size=n)]
        offset = (rng.random(n) * self.degree[users]).astype(np.int64)
        pos = self.indices[self.indptr[users] + offset]
        neg = sample_negatives(users, self.keys, self.n_items, rng)
        return users, pos, neg


def minibatches(arrays: Sequence[np.ndarray], batch_size: int) -> list[Batch]:
    """Split parallel arrays into consecutive mini-batches."""
    n = len(arrays[0])
    return [tuple(a[s : s + batch_size] for a in arrays) for s in range(0, n, batch_size)]


# --------------------------------------------------------------------------- parameter checks
Spec = dict[str, tuple[type | tuple[type, ...], float | None, str]]


def check_params(obj: Any, spec: Spec) -> None:
    """Validate numeric hyperparameters: ``name -> (types, lower bound (exclusive) or None, text)``.

    ``bool`` is never accepted where a number is expected.
    """
    for name, (types, low, expected) in spec.items():
        value = getattr(obj, name)
        ok = isinstance(value, types) and not isinstance(value, bool)
        if ok and low is not None:
            ok = value > low
        if not ok:
            raise ParameterError.invalid(name, expected, value)


# --------------------------------------------------------------------------- the loop
@dataclass
class TrainingResult:
    """What :func:`train_loop` returns.

    Attributes
    ----------
    history : list of dict
        One record per completed epoch: ``epoch``, ``loss``, ``seconds`` and validation metrics.
    best_epoch : int
        The epoch whose parameters were kept (the last one without validation).
    stopped_early : bool
    resumed_from : int
        The epoch the run was resumed after (0 for a fresh run).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    resumed_from: int = 0


def _numpy_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def _writer(log_dir: str | Path | None) -> Any:
    if log_dir is None:
        return None
    require("tensorboard", "log_dir (TensorBoard logging)")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def train_loop(
    *,
    name: str,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    draw_epoch: Callable[[np.random.Generator], Sequence[Batch]],
    batch_loss: Callable[[Batch], torch.Tensor],
    validate: Callable[[], dict[str, float]] | None,
    epochs: int,
    seed: int,
    monitor: str = "recall@20",
    patience: int = 10,
    eval_every: int = 1,
    checkpoint_dir: str | Path | None = None,
    log_dir: str | Path | None = None,
    progress: bool = False,
    fingerprint: dict[str, Any] | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    global_gradients: bool = False,
) -> TrainingResult:
    """Run mini-batch training with early stopping, checkpoints, TensorBoard and a progress bar.

    Parameters
    ----------
    name : str
        Shown in the progress bar.
    module, optimizer
        Trained in place; on return ``module`` holds the parameters of the best validation epoch.
    draw_epoch : callable
        ``draw_epoch(rng) -> list of batches``; must take all its randomness from ``rng``.
    batch_loss : callable
        ``batch_loss(batch) -> scalar tensor``, the loss to minimise on one batch.
    validate : callable or None
        ``validate() -> {metric: value}`` on the current parameters; ``None``: no early stopping.
    epochs : int
        Total number of epochs of the run (a resumed run continues up to this number).
    seed : int
        Seeds the NumPy generator passed to ``draw_epoch`` and torch's global generator.
    monitor : str
        Validation metric to maximise.
    patience : int
        Stop after this many validations without improvement.
    eval_every : int
        Validate every this many epochs and after the last one (so a run resumed from a checkpoint
        repeats an uninterrupted run exactly when the interrupted run ended on a validation epoch).
    checkpoint_dir : path, optional
        Written after every epoch (``checkpoint.pt`` with tensors only, ``checkpoint.json`` with the
        rest); an existing checkpoint of the same run (same ``fingerprint``) is resumed.
    log_dir : path, optional
        TensorBoard scalars ``train/loss``, ``train/epoch_seconds`` and ``valid/<metric>``.
        Independently, each epoch's record goes to the tracked run of the command, if any
        (:func:`gemrec.tracking.report_epoch`), as the epoch ends.
    progress : bool
        Show a tqdm bar per epoch (with ETA).
    fingerprint : dict, optional
        JSON-able description of the run (data shape, hyperparameters except ``epochs``); a
        checkpoint with another fingerprint is refused.
    lr_schedule : callable, optional
        ``lr_schedule(epoch) -> learning rate`` (epochs count from 1), set on every parameter group
        at the start of each epoch. A function of the epoch alone, so a resumed run follows the
        same schedule as an uninterrupted one.
    global_gradients : bool
        With several workers: ``batch_loss``'s backward pass already leaves the global batch's
        gradient on every worker (LightGCN's row-partitioned propagation), so the gradients are
        not summed again; rank 0's parameters are copied to the others at the start.

    Returns
    -------
    TrainingResult

    Notes
    -----
    The loop first calls :func:`~gemrec.models._allocator.keep_freed_memory` (glibc keeps freed
    step buffers for reuse instead of faulting fresh pages in; ``GEMREC_KEEP_FREED_MEMORY=0``
    turns it off).

    Inside a ``torch.distributed`` process group (:mod:`gemrec.models._distributed`) every worker
    runs this loop with the same arguments: each computes ``batch_loss`` on its share of every
    batch, the gradients are summed across workers, and only rank 0 validates (its figures are
    broadcast), writes checkpoints and TensorBoard scalars, logs and shows progress. A checkpoint
    is read by rank 0 and broadcast, so the workers need no shared disk to resume.
    """
    import torch

    fingerprint = json.loads(json.dumps(fingerprint or {}))
    keep_freed_memory()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    result = TrainingResult()
    best_value = -np.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_rounds = 0
    start_epoch = 0

    world = current_world()
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    # rank 0 reads the checkpoint and hands it to the other workers (no shared disk needed)
    saved = _read_checkpoint(ckpt, fingerprint) if world.is_main else None
    saved = broadcast(saved, world, "reading the checkpoint")
    if isinstance(saved, str):
        raise GemrecError(saved)
    if saved is not None:
        meta, tensors = saved
        module.load_state_dict(tensors["module"])
        optimizer.load_state_dict(tensors["optimizer"])
        torch.set_rng_state(tensors["torch_rng"])
        best_state = tensors.get("best_module")
        rng.bit_generator.state = meta["numpy_rng"]
        start_epoch = int(meta["epoch"])
        result.history = meta["history"]
        result.best_epoch = int(meta["best_epoch"])
        result.stopped_early = bool(meta["stopped_early"])
        best_value = float(meta["best_value"]) if meta["best_value"] is not None else -np.inf
        bad_rounds = int(meta["bad_rounds"])
        result.resumed_from = start_epoch

    writer = _writer(log_dir) if world.is_main else None
    if world.distributed and global_gradients:  # the workers start alike and stay alike
        same_parameters(module, world)
    step_loss = (
        data_parallel(module, batch_loss, world)
        if world.distributed and not global_gradients
        else batch_loss
    )
    show = progress and world.is_main

    def save_checkpoint(epoch: int) -> None:
        assert ckpt is not None
        ckpt.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Any] = {
            "module": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if best_state is not None:
            tensors["best_module"] = best_state
        tmp = ckpt / "checkpoint.pt.tmp"
        torch.save(tensors, tmp)
        os.replace(tmp, ckpt / "checkpoint.pt")
        meta = {
            "epoch": epoch,
            "fingerprint": fingerprint,
            "numpy_rng": _numpy_state(rng),
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_value": None if not np.isfinite(best_value) else best_value,
            "bad_rounds": bad_rounds,
            "stopped_early": result.stopped_early,
        }
        tmpj = ckpt / "checkpoint.json.tmp"
        tmpj.write_text(json.dumps(meta, indent=1))
        os.replace(tmpj, ckpt / "checkpoint.json")

    try:
        run_start = last_line = time.perf_counter()
        every = max(1, epochs // 20)
        for epoch in range(start_epoch + 1, epochs + 1):
            if result.stopped_early:
                break
            t0 = time.perf_counter()
            if lr_schedule is not None:
                for group in optimizer.param_groups:
                    group["lr"] = float(lr_schedule(epoch))
            module.train()
            batches = draw_epoch(rng)
            # summed on the device: reading the loss every step would wait for the GPU each time
            total: torch.Tensor | float = 0.0
            count = 0
            with collective_errors(world, f"training epoch {epoch}"):
                for batch in _progress(batches, show, f"{name} {epoch}/{epochs}"):
                    optimizer.zero_grad(set_to_none=True)
                    if world.distributed:  # this worker's share; the gradients are summed
                        local, weight = shard(batch, world)
                        loss = step_loss(local) * weight
                    else:
                        loss = step_loss(batch)
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                    total = total + loss.detach().double() * len(batch[0])
                    count += len(batch[0])
            (total_sum,) = all_sum([torch.as_tensor(total, dtype=torch.float64)], world)
            record: dict[str, float] = {
                "epoch": float(epoch),
                "loss": float(total_sum) / max(count, 1),
                "seconds": time.perf_counter() - t0,
            }
            if validate is not None and (epoch % eval_every == 0 or epoch == epochs):
                module.eval()
                metrics = None
                if world.is_main:  # the others wait for its figures: one decision for all
                    with torch.no_grad():
                        metrics = validate()
                metrics = broadcast(metrics, world, f"validating epoch {epoch}")
                record.update({f"valid_{k}": float(v) for k, v in metrics.items()})
                observer = _validation_observer.get()
                if observer is not None:
                    observer(epoch, metrics)
                value = float(metrics[monitor])
                if value > best_value:
                    best_value, result.best_epoch, bad_rounds = value, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad_rounds += 1
                    if bad_rounds >= patience:
                        result.stopped_early = True
            elif validate is None:
                result.best_epoch = epoch
            result.history.append(record)
            if world.is_main:  # the curves of the command's tracked run, live
                report_epoch(record)
            now = time.perf_counter()
            validated = any(k.startswith("valid_") for k in record)
            due = epoch % every == 0 or now - last_line >= 60.0 or validated or epoch == epochs
            if world.is_main and due:
                # a line every ~5% of the run, minute or validation: where a fit is, in any log
                last_line = now
                elapsed = now - run_start
                left = elapsed / (epoch - start_epoch) * (epochs - epoch)
                shown = ", ".join(
                    f"{k} {v:.5g}" for k, v in record.items() if k not in ("epoch", "seconds")
                )
                logger.info(
                    "%s epoch %d/%d: %s; %.0fs elapsed, about %.0fs left",
                    name,
                    epoch,
                    epochs,
                    shown,
                    elapsed,
                    left,
                )
            if writer is not None:
                writer.add_scalar("train/loss", record["loss"], epoch)
                writer.add_scalar("train/epoch_seconds", record["seconds"], epoch)
                for k, v in record.items():
                    if k.startswith("valid_"):
                        writer.add_scalar(f"valid/{k[6:]}", v, epoch)
                writer.flush()
            if ckpt is not None and world.is_main:
                save_checkpoint(epoch)
    finally:
        if writer is not None:
            writer.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    return result


def _read_checkpoint(
    ckpt: Path | None, fingerprint: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | str | None:
    """``(meta, tensors)`` of the checkpoint in ``ckpt``, None when there is none, or the reason
    it cannot be resumed (a string, raised by every worker alike)."""
    if ckpt is None or not (ckpt / "checkpoint.json").is_file():
        return None
    import torch

    meta = json.loads((ckpt / "checkpoint.json").read_text())
    if meta.get("fingerprint") != fingerprint:
        return (
            f"{ckpt} holds a checkpoint of another run (different data or hyperparameters); "
            "use an empty checkpoint_dir or delete it to start over"
        )
    # on the CPU: a checkpoint written on a GPU resumes anywhere (load_state_dict copies)
    tensors = torch.load(ckpt / "checkpoint.pt", weights_only=True, map_location="cpu")
    return meta, tensors


def _progress(batches: Sequence[Batch], show: bool, desc: str) -> Iterator[Batch]:
    if not show:
        yield from batches
        return
    from tqdm import tqdm

    with contextlib.closing(tqdm(batches, desc=desc, unit="batch", leave=False)) as bar:
        yield from bar


def fingerprint(model: Any, interactions: Any, run_only: Sequence[str]) -> dict[str, Any]:
    """What identifies a training run for checkpoint resumption: data and computing parameters."""
    params = {k: v for k, v in model.get_params().items() if k not in run_only}
    m = interactions.matrix
    return {
        "model": model.name,
        "params": params,
        "shape": list(m.shape),
        "nnz": int(m.nnz),
        "checksum": float(m.indices[:: max(1, m.nnz // 997)].sum()),
    }


def fit_embeddings(
    model: Any,
    interactions: Any,
    validate: Validate | None,
    *,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    draw_epoch: Callable[[np.random.Generator], Sequence[Batch]],
    batch_loss: Callable[[Batch], torch.Tensor],
    export: Callable[[], None],
    lr_schedule: Callable[[int], float] | None = None,
    extra_fingerprint: dict[str, Any] | None = None,
    global_gradients: bool = False,
) -> TrainingResult:
    """Train a torch embedding model with its standard hyperparameters and export the result.

    ``model`` carries ``name, epochs, seed, eval_k, patience, eval_every, checkpoint_dir, log_dir,
    progress``; ``validate(model)`` (None: no early stopping) must return ``recall@{eval_k}``;
    ``export()`` copies the module's current embeddings into the model's numpy
    ``user_embeddings_`` / ``item_embeddings_`` (called before each validation and at the end, after
    :func:`train_loop` restored the best epoch). Sets ``model.history_`` and ``model.best_epoch_``.
    ``extra_fingerprint`` describes inputs other than the interactions and hyperparameters (e.g.
    side information) that a checkpoint must match to be resumed. ``global_gradients``: see
    :func:`train_loop`.
    """

    def validate_exported() -> dict[str, float]:
        assert validate is not None
        export()
        return dict(validate(model))

    result = train_loop(
        name=model.name,
        module=module,
        optimizer=optimizer,
        draw_epoch=draw_epoch,
        batch_loss=batch_loss,
        validate=validate_exported if validate is not None else None,
        epochs=model.epochs,
        seed=model.seed,
        monitor=f"recall@{model.eval_k}",
        patience=model.patience,
        eval_every=model.eval_every,
        checkpoint_dir=model.checkpoint_dir,
        log_dir=model.log_dir,
        progress=model.progress,
        fingerprint={**fingerprint(model, interactions, RUN_ONLY), **(extra_fingerprint or {})},
        lr_schedule=lr_schedule,
        global_gradients=global_gradients,
    )
    export()
    model.history_ = result.history
    model.best_epoch_ = result.best_epoch
    return result


def check_lr_decay(value: object) -> None:
    """``lr_decay`` must be a number in (0, 1] (1 keeps the learning rate constant)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ParameterError.invalid("lr_decay", "a number in (0, 1]", value)


def decaying_lr(lr: float, decay: float) -> Callable[[int], float]:
    """The exponential schedule: epoch ``e`` (from 1) uses ``lr * decay^(e-1)``."""
    return lambda epoch: float(lr) * float(decay) ** (epoch - 1)


#: hyperparameters that do not change the computation (left out of the checkpoint fingerprint)
RUN_ONLY = ("epochs", "checkpoint_dir", "log_dir", "progress", "device")

#: checks shared by the torch models' common hyperparameters
COMMON_CHECKS: Spec = {
    "embedding_dim": (int, 0, "a positive integer"),
    "lr": ((int, float), 0, "a positive number"),
    "train_batch_size": (int, 0, "a positive integer"),
    "reg": ((int, float), -1e-300, "a non-negative number"),
    "epochs": (int, -1, "a non-negative integer"),
    "patience": (int, 0, "a positive integer"),
    "eval_every": (int, 0, "a positive integer"),
    "eval_k": (int, 0, "a positive integer"),
    "seed": (int, None, "an integer"),
}
