"""One worker of the data-parallel tests (run by torchrun from ``test_distributed.py``).

``python -m torch.distributed.run --standalone --nproc-per-node N _distributed_worker.py OUT``
fits every torch model of :data:`RUNS` on the planted graph in a process group of ``N`` workers;
rank 0 writes each model's embeddings and test Recall@20 to ``OUT/<run>.npz``. The same function
fits them in one process for the comparison.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

#: run name -> (model, hyperparameters); batch sizes leave uneven shares, and mf's last batch
#: (480 edges, batch 479) is a single triplet, so one of two workers gets an empty share;
#: lightgcn-rows: row-partitioned propagation (each worker owns a block of the graph's rows)
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "lightgcn": (
        "lightgcn",
        {"epochs": 4, "embedding_dim": 8, "n_layers": 2, "train_batch_size": 53},
    ),
    "lightgcn-rows": (
        "lightgcn",
        {
            "epochs": 4,
            "embedding_dim": 8,
            "n_layers": 2,
            "train_batch_size": 53,
            "partition": "rows",
        },
    ),
    "mf": ("mf", {"epochs": 4, "embedding_dim": 8, "train_batch_size": 479, "lr": 0.05}),
    "ncf": ("ncf", {"epochs": 2, "embedding_dim": 8, "train_batch_size": 301}),
    "item2vec": ("item2vec", {"epochs": 2, "embedding_dim": 8, "pairs_per_batch": 333}),
}
COMMON = {"seed": 0, "progress": False}


def planted() -> tuple[Any, Any]:
    from tests.models._torch_data import planted_blocks

    return planted_blocks(n_users=60, n_items=40, seed=0)


def fit(name: str, **extra: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """``(user embeddings, item embeddings, test Recall@20)`` of run ``name``."""
    from gemrec.eval import evaluate
    from gemrec.models import get_model_class

    train, test = planted()
    model_name, params = RUNS[name]
    model = get_model_class(model_name)(**{**params, **COMMON, **extra}).fit(train)
    recall = float(evaluate(model, test, ks=[20])["recall@20"])
    return model.user_embeddings_, model.item_embeddings_, recall


def main(out: Path) -> None:
    import torch

    from gemrec.models._distributed import process_group

    torch.set_num_threads(1)
    with process_group(cuda=False, timeout_s=120) as world:
        results: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        for name in RUNS:
            results[name] = fit(name)
        # resume: 2 epochs, then the same run continued to 4 from its checkpoint
        ckpt = str(out / "checkpoint")
        fit("lightgcn", epochs=2, checkpoint_dir=ckpt)
        results["lightgcn_resumed"] = fit("lightgcn", checkpoint_dir=ckpt)
        if world.is_main:
            for name, (users, items, recall) in results.items():
                np.savez(out / f"{name}.npz", users=users, items=items, recall=recall)


if __name__ == "__main__":
    from gemrec.models._distributed import exit_worker

    main(Path(sys.argv[1]))
    exit_worker(0)
