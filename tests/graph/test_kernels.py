import numpy as np
import pytest
import scipy.sparse as sp

from gemrec.graph.kernels import accumulate_spmm, has_compiled_kernels


def _slow_reference(X, P, out):
    """Triple loop over stored entries: the definition of out += X @ P."""
    out = out.astype(np.float64).copy()
    X, P = sp.csr_matrix(X), sp.csr_matrix(P)
    for r in range(X.shape[0]):
        for jj in range(X.indptr[r], X.indptr[r + 1]):
            i, w = X.indices[jj], X.data[jj]
            for kk in range(P.indptr[i], P.indptr[i + 1]):
                out[r, P.indices[kk]] += w * P.data[kk]
    return out


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accumulate_spmm_equals_slow_reference(compiled, seed):
    rng = np.random.default_rng(seed)
    X = sp.random(9, 13, density=0.3, random_state=seed, format="csr", dtype=np.float32)
    P = sp.random(13, 11, density=0.4, random_state=seed + 10, format="csr", dtype=np.float32)
    start = rng.random((9, 11)).astype(np.float32)
    out = start.copy()
    res = accumulate_spmm(X, P, out, compiled=compiled)
    assert res is out
    np.testing.assert_allclose(out, _slow_reference(X, P, start), rtol=1e-5, atol=1e-6)


def test_compiled_kernel_available():
    # numba is a declared dependency; the fallback must not silently become the default
    assert has_compiled_kernels()


def test_accumulate_spmm_checks_shapes():
    X = sp.csr_matrix(np.ones((2, 3), np.float32))
    P = sp.csr_matrix(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="shapes"):
        accumulate_spmm(X, P, np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="float32"):
        accumulate_spmm(X, P, np.zeros((2, 4), np.float64))


def test_concurrent_calls_from_threads_are_safe():
    from concurrent.futures import ThreadPoolExecutor

    X = sp.random(50, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    P = sp.random(40, 30, density=0.3, random_state=2, format="csr", dtype=np.float32)
    ref = (X @ P).toarray()

    def one(_):
        return accumulate_spmm(X, P, np.zeros((50, 30), np.float32))

    with ThreadPoolExecutor(4) as pool:
        for out in pool.map(one, range(16)):
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_row_kernel_equals_slow_reference(seed):
    # a single row (one served request) takes the serial kernel
    rng = np.random.default_rng(seed)
    X = sp.random(1, 40, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    P = sp.random(40, 30, density=0.3, random_state=seed + 5, format="csr", dtype=np.float32)
    start = rng.random((1, 30)).astype(np.float32)
    out = start.copy()
    assert accumulate_spmm(X, P, out) is out
    np.testing.assert_allclose(out, _slow_reference(X, P, start), rtol=1e-5, atol=1e-6)
