import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.errors import ParameterError
from gemrec.graph import normalized_interactions, truncated_svd


def _low_rank_plus_noise(seed=0, n=300, m=200, rank=6):
    rng = np.random.default_rng(seed)
    base = rng.random((n, rank)) @ rng.random((rank, m))
    return sp.csr_matrix((base > np.quantile(base, 0.9)).astype(np.float32))


@pytest.mark.parametrize("method", ["randomized", "arpack"])
def test_truncated_svd_matches_lapack(method):
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(30, 25), (12, 40)])
def test_truncated_svd_equals_dense_svd_when_the_probe_spans_the_range(dtype, shape):
    """k + n_oversamples >= min(shape): the basis spans the whole range, the result is exact."""
    rng = np.random.default_rng(1)
    R = sp.csr_matrix((rng.random(shape) < 0.3).astype(np.float32))
    A = normalized_interactions(R)
    k = 5
    u, s, v = truncated_svd(A, k, n_oversamples=min(shape), dtype=dtype)
    ref_u, ref_s, ref_vt = np.linalg.svd(A.toarray().astype(np.float64), full_matrices=False)
    tol = 1e-6 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(s, ref_s[:k], rtol=tol)
    # same vectors up to sign; the sign convention makes each U column's largest entry positive
    ref_u, ref_v = ref_u[:, :k], ref_vt[:k].T
    flip = np.sign(ref_u[np.abs(ref_u).argmax(axis=0), np.arange(k)])
    np.testing.assert_allclose(u, ref_u * flip, atol=10 * tol)
    np.testing.assert_allclose(v, ref_v * flip, atol=10 * tol)
    assert u[np.abs(u).argmax(axis=0), np.arange(k)].min() > 0


def test_truncated_svd_draws_its_probe_from_a_generator():
    A = normalized_interactions(_low_rank_plus_noise(2))
    by_seed = truncated_svd(A, 4, seed=7)
    by_generator = truncated_svd(A, 4, seed=np.random.default_rng(7))
    for x, y in zip(by_seed, by_generator, strict=True):
        np.testing.assert_array_equal(x, y)
    # the generator advances by exactly one (n, k + n_oversamples) normal draw
    rng, ref = np.random.default_rng(7), np.random.default_rng(7)
    truncated_svd(A, 4, n_oversamples=3, seed=rng)
    ref.standard_normal((A.shape[1], 7))
    assert rng.random() == ref.random()


def test_truncated_svd_rank_deficient_matrix_gives_zeros_not_nan():
    A = sp.csr_matrix(np.outer([1.0, 2.0, 0.0, 1.0], [1.0, 0.0, 3.0]).astype(np.float32))
    u, s, v = truncated_svd(A, 3)
    assert np.all(np.isfinite(u)) and np.all(np.isfinite(v))
    np.testing.assert_allclose(s, [np.linalg.norm(A.toarray()), 0.0, 0.0], rtol=1e-6, atol=1e-6)
    assert not v[:, 1:].any()
    np.testing.assert_allclose((u * s) @ v.T, A.toarray(), atol=1e-5)


def test_truncated_svd_deterministic_for_seed():
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
    with pytest.raises(ParameterError, match="'dtype'"):
        truncated_svd(A, 2, dtype=np.float16)
    with pytest.raises(ParameterError, match="'n_iter'"):
        truncated_svd(A, 2, n_iter=-1)
