import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.errors import ParameterError
from gemrec.graph import normalized_interactions, spectral, truncated_svd


def _low_rank_plus_noise(seed=0, n=300, m=200, rank=6):
    rng = np.random.default_rng(seed)
    base = rng.random((n, rank)) @ rng.random((rank, m))
    return sp.csr_matrix((base > np.quantile(base, 0.9)).astype(np.float32))


@pytest.mark.parametrize("method", ["randomized", "randomized-numpy", "arpack"])
def test_truncated_svd_matches_lapack(method, monkeypatch):
    if method == "randomized-numpy":  # the path of an install without torch
        monkeypatch.setattr(spectral, "is_available", lambda module: module != "torch")
        method = "randomized"
    A = normalized_interactions(_low_rank_plus_noise())
    k = 8
    u, s, v = truncated_svd(A, k, method=method, n_iter=6)
    _, ref_s, ref_vt = np.linalg.svd(A.toarray().astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(s, ref_s[:k], rtol=2e-3)
    assert u.shape == (A.shape[0], k) and v.shape == (A.shape[1], k)
    assert s.dtype == np.float32 and np.all(np.diff(s) <= 1e-6)
    # subspaces agree (singular vectors are defined up to sign/rotation within clusters)
    proj = v.T @ ref_vt[:k].T
    assert np.linalg.svd(proj, compute_uv=False).min() > 0.99
    np.testing.assert_allclose(A @ v, u * s, atol=2e-3)


@pytest.mark.parametrize("torch_installed", [True, False])
def test_truncated_svd_deterministic_for_seed(torch_installed, monkeypatch):
    monkeypatch.setattr(spectral, "is_available", lambda module: torch_installed)
    A = normalized_interactions(_low_rank_plus_noise(1))
    a = truncated_svd(A, 5, seed=3)
    b = truncated_svd(A, 5, seed=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_truncated_svd_rejects_bad_rank():
    A = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ParameterError, match="'k'"):
        truncated_svd(A, 5)
    with pytest.raises(ParameterError, match="'k'"):
        truncated_svd(A, 4, method="arpack")
    with pytest.raises(ParameterError, match="'method'"):
        truncated_svd(A, 2, method="lobpcg")
