"""The fast mapping path (PCA before UMAP) and the measuring helpers of benchmarks/."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from knowledge_map.devtools.perf import (
    clustered_matrix,
    cpu_clock_ghz,
    cpu_peak_flops,
    peak_rss_bytes,
    run_measured,
)
from knowledge_map.flops import encoder_flops, gpu_peak_flops
from knowledge_map.mapping import (
    EXACT_KNN_ROWS,
    ProjectedUMAP,
    exact_neighbours,
    fit_umap,
    nearest_neighbours,
    pca_fit,
    pca_transform,
)


def test_pca_matches_the_singular_value_decomposition():
    x = clustered_matrix(600, 40, clusters=5, subspace=3, seed=1)
    mean, components = pca_fit(x, 6, block=128)
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    # Same subspace, same order: |cos| between matching components is 1.
    np.testing.assert_allclose(np.abs((components @ vt[:6].T).diagonal()), 1, atol=1e-3)
    np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-6)
    projected = pca_transform(x, mean, components, block=100)
    assert projected.dtype == np.float32 and projected.shape == (600, 6)
    np.testing.assert_allclose(projected.var(axis=0)[:-1] >= projected.var(axis=0)[1:], True)


def test_pca_signs_are_fixed_so_the_projection_is_reproducible():
    x = clustered_matrix(300, 20, clusters=4, subspace=2, seed=2)
    _, components = pca_fit(x, 4)
    _, negated_data_components = pca_fit(x[::-1].copy(), 4)
    np.testing.assert_allclose(components, negated_data_components, atol=1e-4)
    rows = np.arange(len(components))
    assert (components[rows, np.abs(components).argmax(axis=1)] > 0).all()


@pytest.mark.slow
def test_fit_umap_with_pca_is_deterministic_and_transforms_new_points():
    x = clustered_matrix(400, 64, clusters=4, subspace=3, seed=3)
    reducer, coords = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=8, n_epochs=30)
    _, again = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=8, n_epochs=30)
    assert coords.dtype == np.float32 and coords.tobytes() == again.tobytes()
    assert isinstance(reducer, ProjectedUMAP) and reducer.components.shape == (8, 64)
    restored = pickle.loads(pickle.dumps(reducer))
    assert restored.transform(x[:5]).shape == (5, 2)


@pytest.mark.slow
def test_fit_umap_without_pca_keeps_the_input():
    x = clustered_matrix(200, 16, clusters=3, subspace=2, seed=4)
    reducer, coords = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=None, n_epochs=20)
    assert reducer.components is None and coords.shape == (200, 2)
    reducer, _ = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=64, n_epochs=20)
    assert reducer.components is None  # asking for more dimensions than there are is a no-op


def test_clustered_matrix_is_normalised_seeded_and_clustered():
    a = clustered_matrix(1000, 32, clusters=4, subspace=2, seed=5, block=300)
    assert a.dtype == np.float32 and a.tobytes() == clustered_matrix(1000, 32, 4, 2, seed=5, block=300).tobytes()
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    sims = a @ a.T
    # Cluster structure: a row's best match is far closer than a random row.
    assert np.sort(sims, axis=1)[:, -2].mean() > sims.mean() + 0.3


def test_attention_width_counts_heads_times_head_size():
    """Qwen3-0.6B computes attention over 16 heads x 128 = 2,048, not its hidden size of 1,024; BERT-likes over hidden."""
    from types import SimpleNamespace

    from knowledge_map.flops import attention_width

    qwen3 = SimpleNamespace(num_attention_heads=16, head_dim=128, hidden_size=1024)
    minilm = SimpleNamespace(num_attention_heads=12, hidden_size=384)
    assert attention_width(qwen3) == 2048
    assert attention_width(minilm) == 384


def test_encoder_flops_formula():
    # 2 * P * s + 4 * L * d * s^2, summed over texts.
    assert encoder_flops([10], layer_params=100, n_layers=2, hidden=8) == 2 * 100 * 10 + 4 * 2 * 8 * 100
    assert encoder_flops([1, 2], 1, 1, 1) == (2 + 4) + (4 + 16)


def test_device_peaks():
    assert cpu_peak_flops(2, 2.5, 32) == 160e9
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA L40") == 181e12 and gpu_peak_flops("NVIDIA L4") == 121e12  # L40 is not an L4
    assert gpu_peak_flops("Some Unknown GPU") is None


def test_cpu_clock_and_rss(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu MHz\t\t: 2596.142\n")
    assert cpu_clock_ghz(str(info)) == pytest.approx(2.596142)
    assert cpu_clock_ghz(str(tmp_path / "missing")) is None
    assert peak_rss_bytes() > 10_000_000


def test_run_measured_reads_the_last_json_line_and_reports_failures():
    assert run_measured(["-c", "print('noise'); print('{\"x\": 1}')"]) == {"x": 1}
    with pytest.raises(RuntimeError, match="failed"):
        run_measured(["-c", "raise SystemExit(3)"])


@pytest.mark.slow
def test_fit_umap_with_own_nn_descent_settings_is_deterministic_and_accurate():
    x = clustered_matrix(EXACT_KNN_ROWS + 400, 24, clusters=6, subspace=3, seed=6)
    knn = {"n_trees": 4, "n_iters": 3, "max_candidates": 12}
    indices, distances, index = nearest_neighbours(x, 10, "cosine", 42, **knn)
    assert indices.shape == distances.shape == (len(x), 10) and index is not None
    exact = np.argsort(-(x[:200] @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(indices[i]) & set(exact[i])) / 10 for i in range(200)])
    assert recall > 0.9
    reducer, coords = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=8, n_epochs=15, init="pca", knn=knn)
    _, again = fit_umap(x, 10, 0.1, "cosine", 42, pca_dims=8, n_epochs=15, init="pca", knn=knn)
    assert coords.shape == (len(x), 2) and coords.tobytes() == again.tobytes()
    assert reducer.umap.knn_search_index is not None  # from our graph: new points can still be mapped
    assert reducer.transform(x[:3]).shape == (3, 2)


def test_fit_umap_leaves_small_maps_to_umaps_exact_neighbours():
    x = clustered_matrix(300, 16, clusters=3, subspace=2, seed=7)
    reducer, coords = fit_umap(x, 10, 0.1, "cosine", 42, n_epochs=10, init="pca", knn={"n_trees": 2})
    assert reducer.umap.knn_search_index is None and coords.shape == (300, 2)


def test_large_maps_use_their_own_epochs():
    x = clustered_matrix(300, 16, clusters=3, subspace=2, seed=8)
    reducer, _ = fit_umap(x, 10, 0.1, "cosine", 42, n_epochs=12, n_epochs_large=5, large_rows=300, init="pca")
    assert reducer.umap.n_epochs == 5
    reducer, _ = fit_umap(x, 10, 0.1, "cosine", 42, n_epochs=12, n_epochs_large=5, large_rows=301, init="pca")
    assert reducer.umap.n_epochs == 12


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbours_match_brute_force_with_each_row_first(metric):
    x = clustered_matrix(700, 12, clusters=5, subspace=3, seed=8)
    indices, distances = exact_neighbours(x, 9, metric, block=128)
    if metric == "cosine":
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        full = 1 - unit @ unit.T
    else:
        full = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(full, -1)
    expected = np.argsort(full, axis=1, kind="stable")[:, :9]
    assert (indices[:, 0] == np.arange(700)).all() and (distances[:, 0] == 0).all()
    assert (np.sort(indices, axis=1) == np.sort(expected, axis=1)).mean() > 0.999
    np.fill_diagonal(full, 0)
    np.testing.assert_allclose(distances, np.take_along_axis(full, indices, axis=1), atol=1e-4)
    assert (np.diff(distances, axis=1) >= -1e-6).all()
    again, _ = exact_neighbours(x, 9, metric, block=700)
    assert again.tobytes() == indices.tobytes()


@pytest.mark.slow
def test_fit_umap_on_an_exact_graph_is_deterministic_and_still_transforms():
    x = clustered_matrix(EXACT_KNN_ROWS + 400, 24, clusters=6, subspace=3, seed=9)
    settings = dict(pca_dims=8, n_epochs=15, init="pca", knn={"n_trees": 4}, exact_knn_rows=len(x) + 1)
    reducer, coords = fit_umap(x, 10, 0.1, "cosine", 42, **settings)
    _, again = fit_umap(x, 10, 0.1, "cosine", 42, **settings)
    assert coords.tobytes() == again.tobytes()
    assert reducer.umap._knn_search_index is None  # exact: no index until one is needed
    restored = pickle.loads(pickle.dumps(reducer))
    mapped = restored.transform(x[:3])
    assert mapped.shape == (3, 2) and np.isfinite(mapped).all()
