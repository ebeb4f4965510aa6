import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.errors import ParameterError
from gemrec.graph import (
    bipartite_adjacency,
    bipartite_edge_index,
    degree_power,
    item_gram,
    normalized_interactions,
    to_torch_sparse,
)


@st.composite
def interaction_matrices(draw):
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 12))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**31 - 1))
    weighted = draw(st.booleans())
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    values = rng.uniform(0.1, 5.0, (n_users, n_items)) if weighted else np.ones((n_users, n_items))
    return sp.csr_matrix(np.where(mask, values, 0.0).astype(np.float32))


def _dense_sym_norm(A):
    d = A.sum(axis=1)
    inv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    return inv[:, None] * A * inv[None, :]


@settings(max_examples=60, deadline=None)
@given(interaction_matrices(), st.booleans())
def test_normalized_adjacency_symmetric_with_spectral_radius_at_most_one(R, self_loops):
    adj = bipartite_adjacency(R, self_loops=self_loops)
    n = R.shape[0] + R.shape[1]
    assert adj.shape == (n, n) and adj.dtype == np.float32
    dense = adj.toarray().astype(np.float64)
    np.testing.assert_allclose(dense, dense.T, atol=1e-7)
    radius = np.abs(np.linalg.eigvalsh(dense)).max() if n else 0.0
    assert radius <= 1.0 + 1e-5
    # equals the dense formula D^-1/2 A D^-1/2
    A = np.zeros((n, n))
    A[: R.shape[0], R.shape[0] :] = R.toarray()
    A[R.shape[0] :, : R.shape[0]] = R.toarray().T
    if self_loops:
        A += np.eye(n)
    np.testing.assert_allclose(dense, _dense_sym_norm(A), rtol=1e-5, atol=1e-7)
    if R.nnz and not self_loops:
        assert radius == pytest.approx(1.0, abs=1e-5)  # a bipartite component always reaches 1


@settings(max_examples=60, deadline=None)
@given(interaction_matrices())
def test_normalized_interactions_is_the_offdiagonal_block(R):
    Rn = normalized_interactions(R)
    adj = bipartite_adjacency(R).toarray()
    np.testing.assert_allclose(Rn.toarray(), adj[: R.shape[0], R.shape[0] :], rtol=1e-5, atol=1e-7)
    s = np.linalg.svd(Rn.toarray().astype(np.float64), compute_uv=False) if R.nnz else np.zeros(1)
    assert s.max() <= 1.0 + 1e-5
    gram = item_gram(Rn).toarray()
    np.testing.assert_allclose(gram, Rn.toarray().T @ Rn.toarray(), rtol=1e-5, atol=1e-6)


def test_normalized_interactions_exponents_match_formula():
    R = sp.csr_matrix(np.array([[1, 2, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32))
    du, di = np.array([3.0, 2.0, 0.0]), np.array([1.0, 3.0, 1.0])
    Rn = normalized_interactions(R, user_exponent=1.0, item_exponent=0.25).toarray()
    expected = np.zeros((3, 3))
    for u in range(2):
        for i in range(3):
            expected[u, i] = R[u, i] / du[u] / di[i] ** 0.25
    np.testing.assert_allclose(Rn, expected, rtol=1e-6)
    assert not Rn[2].any()


@settings(max_examples=40, deadline=None)
@given(interaction_matrices())
def test_normalisation_is_rounded_once_from_float64(R):
    """Degrees, powers and products in float64, one rounding to float32 (within half an ulp)."""
    dense = R.toarray().astype(np.float64)
    du, di = dense.sum(axis=1), dense.sum(axis=0)
    inv_u = np.where(du > 0, 1.0 / np.sqrt(np.where(du > 0, du, 1.0)), 0.0)
    inv_i = np.where(di > 0, 1.0 / np.sqrt(np.where(di > 0, di, 1.0)), 0.0)
    ref = (inv_u[:, None] * dense * inv_i[None, :]).astype(np.float32)
    np.testing.assert_allclose(normalized_interactions(R).toarray(), ref, rtol=2e-7, atol=0)
    adj = bipartite_adjacency(R)
    assert adj.has_canonical_format and adj.indices.dtype == np.int32
    np.testing.assert_allclose(adj.toarray()[: R.shape[0], R.shape[0] :], ref, rtol=2e-7, atol=0)


def test_random_walk_normalisation_rows_sum_to_one():
    R = sp.csr_matrix(np.array([[1, 3, 0], [0, 0, 0], [2, 2, 4]], dtype=np.float32))
    P = normalized_interactions(R, user_exponent=1.0, item_exponent=0.0).toarray()
    np.testing.assert_allclose(P.sum(axis=1), [1.0, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(P[0], [0.25, 0.75, 0.0], rtol=1e-6)


def test_degree_power_maps_isolated_nodes_to_zero():
    np.testing.assert_allclose(degree_power(np.array([0.0, 4.0, 1.0]), -0.5), [0.0, 0.5, 1.0])


def test_edge_index_lists_both_directions():
    R = sp.csr_matrix(np.array([[1, 0], [1, 1]], dtype=np.float32))
    edge_index, weight = bipartite_edge_index(R)
    pairs = set(map(tuple, edge_index.T.tolist()))
    assert pairs == {(0, 2), (2, 0), (1, 2), (2, 1), (1, 3), (3, 1)}
    adj = bipartite_adjacency(R).toarray()
    np.testing.assert_allclose(weight, adj[edge_index[0], edge_index[1]])


def test_to_torch_sparse_round_trip():
    R = sp.random(7, 5, density=0.4, random_state=0, format="csr", dtype=np.float32)
    for layout in ("csr", "coo"):
        t = to_torch_sparse(R, layout=layout)
        np.testing.assert_allclose(t.to_dense().numpy(), R.toarray())


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ParameterError, match="'R'"):
        normalized_interactions(np.ones((2, 2)))
    with pytest.raises(ParameterError, match="non-negative"):
        normalized_interactions(sp.csr_matrix(np.array([[-1.0]])))
    with pytest.raises(ParameterError, match="normalization"):
        bipartite_adjacency(sp.csr_matrix(np.ones((2, 2))), normalization="rw")
