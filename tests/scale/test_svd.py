"""The row-block randomized SVD on Dask is the in-core randomized SVD."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.graph.spectral import truncated_svd
from gemrec.scale.svd import block_randomized_svd, tree_sum


def test_matches_the_in_core_svd_block_for_block(client):
    rng = np.random.default_rng(0)
    A = sp.random(700, 300, density=0.03, random_state=rng, dtype=np.float32, format="csr")
    blocks = [client.scatter(A[lo : lo + 128]) for lo in range(0, 700, 128)]
    u_blocks, s, v = block_randomized_svd(client, blocks, A.shape, 12, n_iter=3, seed=5)
    u_ref, s_ref, v_ref = truncated_svd(A, 12, n_iter=3, seed=5)
    np.testing.assert_allclose(s, s_ref, rtol=1e-6)
    u = np.vstack(client.gather(u_blocks))
    np.testing.assert_allclose(v, v_ref, atol=1e-5)  # signs fixed the same way
    np.testing.assert_allclose(u, u_ref, atol=1e-5)
    np.testing.assert_allclose(u.T @ u, np.eye(12), atol=1e-5)


def test_tree_sum_adds_every_block(client):
    parts = [client.scatter(np.full(3, float(i))) for i in range(7)]
    np.testing.assert_array_equal(client.gather(tree_sum(client, parts)), np.full(3, 21.0))
