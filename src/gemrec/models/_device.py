"""Where the torch models train: the ``device`` hyperparameter and moving batches there.

``device`` is ``"auto"`` (CUDA when torch sees a GPU, else the CPU), ``"cpu"``, ``"cuda"`` or
``"cuda:N"``. It is a run-only setting: every random draw is made on the CPU (NumPy generators and
torch's CPU generator), so the device changes where the arithmetic runs, not which samples are
drawn, and a checkpoint written on one device resumes on another. In a data-parallel run
(:mod:`gemrec.models._distributed`) ``"auto"`` and ``"cuda"`` mean the worker's own GPU,
``cuda:LOCAL_RANK``.

The parameter check is torch-free (the CLI validates hyperparameters before loading data); torch
is imported when a device is resolved, at fit time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from gemrec.errors import ParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_CHOICES", "check_device", "resolve_device", "tensor_minibatches"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(value: object) -> None:
    """``device`` must be ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    if not isinstance(value, str) or not _PATTERN.match(value):
        raise ParameterError.invalid("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", value)


def resolve_device(value: str) -> torch.device:
    """The ``torch.device`` that ``device=value`` names on this machine (and in this worker).

    Raises
    ------
    ParameterError
        ``"cuda"`` was asked for and torch sees no GPU (for example the CPU build of torch is
        installed), or a GPU index does not exist.
    """
    import torch

    check_device(value)
    if value == "cpu" or (value == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ParameterError(
            f"parameter 'device' is {value!r} but torch sees no CUDA GPU (torch "
            f"{torch.__version__}; a CPU build has no CUDA): use device='cpu' or 'auto', or "
            "install a CUDA build of torch (README, 'GPUs')"
        )
    if ":" in value:
        index = int(value.split(":", 1)[1])
    else:  # one GPU per worker on a machine: torchrun sets LOCAL_RANK
        index = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if index >= count:
        raise ParameterError(
            f"parameter 'device' is {value!r}, which names GPU {index}, but this machine has "
            f"{count}: start at most {count} workers per machine on GPUs, or use device='cpu'"
        )
    return torch.device("cuda", index)


def tensor_minibatches(
    arrays: Sequence[np.ndarray], batch_size: int, device: torch.device
) -> list[tuple[torch.Tensor, ...]]:
    """Consecutive mini-batches of parallel arrays as tensors on ``device``.

    Each array is copied to the device once per epoch (one transfer instead of one per step); on
    the CPU the tensors share the arrays' memory. Slices are views.
    """
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]
    n = len(arrays[0])
    return [tuple(t[s : s + batch_size] for t in tensors) for s in range(0, n, batch_size)]
