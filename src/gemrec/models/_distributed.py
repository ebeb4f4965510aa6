"""Data-parallel training on ``torch.distributed``: the workers, the split batch, the all-reduce.

A run of ``N`` workers (started by ``torchrun`` or ``gemrec train --nproc N``) is *replicated*:
every worker holds the whole graph and the whole model, draws the same sample stream from the same
seed, and computes the loss on its share of each global mini-batch (worker ``r`` of ``N`` takes
rows ``[r b / N, (r+1) b / N)`` of a batch of ``b``). The gradients are summed across workers by
``DistributedDataParallel`` with a summing communication hook, each worker's loss being its share
of the batch's *sum* divided by ``b``, so that ``N`` workers take exactly the optimisation steps of
one worker with the same batch size, up to float rounding. Only rank 0 validates, writes
checkpoints, logs and shows progress; validation results reach the other ranks by broadcast so
that every rank makes the same early-stopping decision.

Backends: gloo for CPU tensors, NCCL for CUDA tensors (``"cpu:gloo,cuda:nccl"`` when torch has
CUDA), chosen when the process group starts. Every collective has the process group's timeout, and
a collective that fails (a worker died, the network broke, the timeout passed) ends the run with a
:class:`~gemrec.errors.GemrecError` that says so, never a hang.

Sparse gradients (item2vec's ``nn.Embedding(sparse=True)`` tables) are gathered, not reduced: the
rows each worker touched, padded to a common length and all-gathered; the optimiser then sums
duplicate rows as it does in one process. Bytes per step: the dense gradient for the dense models
(a ring all-reduce sends and receives ``2 (N-1)/N`` times its size per worker); for sparse ones
each worker receives the rows the ``N-1`` others touched.

torch is imported by the functions that need it; :func:`launched_world` reads the environment only.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from gemrec.errors import GemrecError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "World",
    "all_sum",
    "broadcast",
    "collective_errors",
    "current_world",
    "data_parallel",
    "exit_worker",
    "gather_rows",
    "gather_sparse",
    "launch_local",
    "launched_world",
    "process_group",
    "same_parameters",
    "shard",
    "worker_joined",
]

#: seconds a collective may wait for the other workers (rank 0's validation included)
DEFAULT_TIMEOUT_S = 1800.0

Batch = tuple[Any, ...]

_joined = False  # whether this process has joined a process group (see exit_worker)


@dataclass(frozen=True)
class World:
    """This worker's place in a run: ``rank`` of ``size`` workers, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one worker that writes files, logs and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_world() -> World | None:
    """The worker's place as torchrun describes it in the environment; None outside torchrun."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        return World(
            rank=int(os.environ["RANK"]),
            size=int(os.environ["WORLD_SIZE"]),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        raise GemrecError(
            "RANK / WORLD_SIZE / LOCAL_RANK in the environment are not integers: start workers "
            "with torchrun or 'gemrec train --nproc N'"
        ) from None


def current_world() -> World:
    """The running process group's world, or a world of one when none was started."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return World()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local)


@contextlib.contextmanager
def process_group(*, timeout_s: float = DEFAULT_TIMEOUT_S, cuda: bool) -> Iterator[World]:
    """Join the process group that torchrun's environment describes; leave it on exit.

    Parameters
    ----------
    timeout_s : float
        How long any collective (gradient all-reduce, broadcast of validation results, start-up)
        may wait for the other workers before the run fails.
    cuda : bool
        Whether this run trains on GPUs: NCCL then carries CUDA tensors (gloo always carries the
        CPU ones), and the worker's current device becomes ``cuda:LOCAL_RANK``.
    """
    import torch
    import torch.distributed as dist

    world = launched_world()
    if world is None:
        raise GemrecError(
            "no distributed run to join: RANK and WORLD_SIZE are not set (start the workers "
            "with torchrun or 'gemrec train --nproc N')"
        )
    if not dist.is_available():
        raise GemrecError(f"this torch build ({torch.__version__}) has no torch.distributed")
    backend = "gloo"
    if cuda and torch.cuda.is_available() and dist.is_nccl_available():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(world.local_rank % max(torch.cuda.device_count(), 1))
    timeout = datetime.timedelta(seconds=float(timeout_s))
    with collective_errors(world, "starting the process group"):
        dist.init_process_group(backend=backend, timeout=timeout)
    global _joined
    _joined = True
    try:
        yield current_world()
    finally:
        with contextlib.suppress(Exception):  # the run's own error matters more than this one
            dist.destroy_process_group()


@contextlib.contextmanager
def collective_errors(world: World, doing: str) -> Iterator[None]:
    """Turn a failed collective into one clear :class:`GemrecError` (other errors pass through)."""
    try:
        yield
    except GemrecError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        if not world.distributed or not _is_communication_error(exc):
            raise
        detail = " ".join(str(exc).split())[:300]
        raise GemrecError(
            f"distributed training failed while {doing} (worker {world.rank} of {world.size}): "
            "another worker stopped or could not be reached before the timeout; the run is "
            f"ended. Cause: {type(exc).__name__}: {detail}"
        ) from exc


def _is_communication_error(exc: BaseException) -> bool:
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc).lower()
    return any(
        word in text
        for word in ("gloo", "nccl", "connection", "timed out", "timeout", "socket", "peer")
    )


def shard(batch: Batch, world: World) -> tuple[Batch, float]:
    """This worker's share of a global mini-batch and its weight ``share / batch size``.

    An empty share (a batch smaller than the number of workers) becomes the batch's first row
    with weight 0: the worker still runs a forward and backward pass, so that every worker takes
    part in the step's all-reduce, and adds exactly zero to the gradient.
    """
    n = len(batch[0])
    lo, hi = n * world.rank // world.size, n * (world.rank + 1) // world.size
    if hi > lo:
        return tuple(a[lo:hi] for a in batch), (hi - lo) / n
    return tuple(a[:1] for a in batch), 0.0


def all_sum(values: Sequence[torch.Tensor], world: World) -> list[torch.Tensor]:
    """Element-wise sums over the workers (the values themselves in a world of one)."""
    if not world.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    flat = torch.stack([v.detach().to("cpu", torch.float64).reshape(()) for v in values])
    with collective_errors(world, "summing the epoch's loss"):
        dist.all_reduce(flat)
    return list(flat.unbind(0))


def broadcast(obj: Any, world: World, doing: str) -> Any:
    """Rank 0's ``obj`` on every worker (pickled; for small things and checkpoints)."""
    if not world.distributed:
        return obj
    import torch
    import torch.distributed as dist

    box = [obj if world.is_main else None]
    with collective_errors(world, doing):
        dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def data_parallel(
    module: torch.nn.Module, batch_loss: Callable[[Batch], torch.Tensor], world: World
) -> Callable[[Batch], torch.Tensor]:
    """``batch_loss`` run through ``DistributedDataParallel`` around ``module``.

    The returned function computes the loss of a worker's share of a batch; its ``backward()``
    sums every parameter's gradient over the workers (dense gradients by all-reduce, sparse ones
    by all-gather). Building it broadcasts rank 0's parameters to every worker.
    """
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    class LossModule(nn.Module):
        """``forward(*batch) = batch_loss(batch)``, owning ``module``'s parameters (for DDP)."""

        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, *batch: Any) -> torch.Tensor:
            return batch_loss(batch)

    param = next(module.parameters())
    device_ids = [param.device.index] if param.device.type == "cuda" else None
    with collective_errors(world, "setting up data-parallel training"):
        ddp = DistributedDataParallel(LossModule(), device_ids=device_ids)
    # a lambda: DDP checks a hook's annotations against its own classes
    ddp.register_comm_hook(None, lambda group, bucket: _sum_gradients(group, bucket))

    def loss(batch: Batch) -> torch.Tensor:
        out: torch.Tensor = ddp(*batch)
        return out

    return loss


def _sum_gradients(process_group: Any, bucket: Any) -> Any:
    """DDP communication hook: the *sum* of a gradient bucket over the workers (not the mean)."""
    import torch
    import torch.distributed as dist

    buffer = bucket.buffer()
    if buffer.is_sparse:
        fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        fut.set_result(gather_sparse(buffer, process_group))
        return fut
    work = dist.all_reduce(buffer, group=process_group, async_op=True)
    assert work is not None
    return work.get_future().then(lambda f: f.value()[0])


def gather_sparse(grad: torch.Tensor, group: Any) -> torch.Tensor:
    """Every worker's rows of a sparse (COO, one sparse dimension) gradient, concatenated."""
    import torch
    import torch.distributed as dist

    g = grad.coalesce()
    indices, values = g.indices(), g.values()
    size = torch.tensor([indices.shape[1]], dtype=torch.int64, device=values.device)
    n_workers = dist.get_world_size(group)
    sizes = [torch.zeros_like(size) for _ in range(n_workers)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    pad = longest - indices.shape[1]
    indices = torch.nn.functional.pad(indices, (0, pad))
    values = torch.cat([values, values.new_zeros((pad, *values.shape[1:]))])
    all_indices = [torch.empty_like(indices) for _ in range(n_workers)]
    all_values = [torch.empty_like(values) for _ in range(n_workers)]
    dist.all_gather(all_indices, indices, group=group)
    dist.all_gather(all_values, values, group=group)
    return torch.sparse_coo_tensor(
        torch.cat([i[:, :c] for i, c in zip(all_indices, counts, strict=True)], dim=1),
        torch.cat([v[:c] for v, c in zip(all_values, counts, strict=True)]),
        grad.shape,
        check_invariants=False,  # indices < shape by construction; duplicates are summed later
    )


def gather_rows(local: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Every worker's block of rows, concatenated in rank order (worker ``r`` holds ``sizes[r]``
    rows; blocks are padded to the largest for the all-gather)."""
    import torch
    import torch.distributed as dist

    longest = max(max(sizes), 1)
    padded = torch.nn.functional.pad(local, (0, 0, 0, longest - local.shape[0]))
    blocks = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(blocks, padded.contiguous())
    return torch.cat([b[:n] for b, n in zip(blocks, sizes, strict=True)])


def same_parameters(module: torch.nn.Module, world: World) -> None:
    """Rank 0's parameters on every worker (what ``DistributedDataParallel`` does on setup)."""
    import torch.distributed as dist

    if not world.distributed:
        return
    with collective_errors(world, "sharing the initial parameters"):
        for param in module.parameters():
            dist.broadcast(param.data, src=0)


def worker_joined() -> bool:
    """Whether this process joined a process group (it is, or was, a worker of a run)."""
    return _joined


def exit_worker(code: int) -> NoReturn:
    """End a worker process with ``code`` now, skipping the interpreter's teardown.

    Once ``DistributedDataParallel`` has wrapped a module, torch keeps the gloo group alive in C++
    after :func:`torch.distributed.destroy_process_group`; its threads are then destroyed during
    interpreter teardown, which now and then aborts a worker whose work is done and saved
    ("terminate called without an active exception", exit code -6), and torchrun fails the run.
    Everything Python would write at exit (standard streams, logging handlers) is flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# --------------------------------------------------------------------------- launching
def launch_local(nproc: int, module_args: Sequence[str]) -> int:
    """Run ``python -m gemrec <module_args>`` in ``nproc`` local workers (torchrun standalone).

    Each worker gets ``OMP_NUM_THREADS`` = CPU cores / ``nproc`` unless it is set already.
    Returns 0 when every worker succeeded; raises :class:`GemrecError` naming the failed workers
    otherwise (each worker has printed its own error above).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    nproc = int(nproc)
    if "OMP_NUM_THREADS" not in os.environ:  # the workers share this machine's cores
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    argv = ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "-m", "gemrec"]
    try:
        run(parse_args([*argv, *module_args]))  # type: ignore[no-untyped-call]
    except ChildFailedError as exc:
        failures = sorted(exc.failures.values(), key=lambda f: f.local_rank)
        which = ", ".join(f"worker {f.local_rank}: exit code {f.exitcode}" for f in failures)
        raise GemrecError(
            f"{len(failures)} of {nproc} workers failed ({which}) and the run was stopped; each "
            "worker's own error is printed above"
        ) from None
    sys.stdout.flush()
    return 0
