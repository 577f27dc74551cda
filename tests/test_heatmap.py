"""The knowledge-heatmap estimator in Python (the page's copy is checked against it in test_site_browser.py)."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_map.grid import cell_center
from knowledge_map.heatmap import knowledge_at, knowledge_grid


def test_no_answers_reads_no_evidence_everywhere():
    """Without answers every grid point is exactly 0.5, with or without a prior."""
    for prior in (0.0, 0.1):
        grid = knowledge_grid(np.empty((0, 2)), [], sigma=0.15, n=8, prior_weight=prior)
        assert grid.shape == (8, 8)
        np.testing.assert_array_equal(grid, 0.5)


def test_plain_weighted_mean_without_prior():
    """With w0 = 0 the estimate is sum(w c) / sum(w), computed by hand for two answers."""
    answers = np.array([[0.2, 0.3], [0.7, 0.6]])
    correct = [1, 0]
    sigma = 0.2
    p = (0.4, 0.5)
    w = np.exp(-((p[0] - answers[:, 0]) ** 2 + (p[1] - answers[:, 1]) ** 2) / (2 * sigma**2))
    estimate, evidence = knowledge_at(p[0], p[1], answers, correct, sigma, prior_weight=0.0)
    assert estimate == pytest.approx(w[0] / w.sum(), abs=1e-12)
    assert evidence == pytest.approx(w.sum(), abs=1e-12)


def test_prior_pulls_far_points_back_to_one_half():
    """Next to a right answer the estimate is near 1; far away it returns to 0.5."""
    near, _ = knowledge_at(0.1, 0.1, [[0.1, 0.1]], [True], sigma=0.05, prior_weight=0.1)
    far, evidence = knowledge_at(0.9, 0.9, [[0.1, 0.1]], [True], sigma=0.05, prior_weight=0.1)
    assert near == pytest.approx((1 + 0.1 * 0.5) / (1 + 0.1), abs=1e-12)
    assert far == pytest.approx(0.5, abs=1e-9) and evidence < 1e-9


def test_grid_is_evaluated_at_cell_centres_row_major_by_y():
    """grid[gy, gx] is the estimate at ((gx + 0.5)/n, (gy + 0.5)/n)."""
    answers, correct = [[0.1, 0.8], [0.6, 0.2], [0.5, 0.5]], [1, 0, 1]
    n = 5
    grid = knowledge_grid(answers, correct, sigma=0.15, n=n, prior_weight=0.1)
    for gx, gy in [(0, 0), (4, 1), (2, 3)]:
        expected, _ = knowledge_at(cell_center(gx, n), cell_center(gy, n), answers, correct, 0.15, 0.1)
        assert grid[gy, gx] == pytest.approx(float(expected), abs=1e-15)
    assert grid[3, 0] > 0.5 > grid[1, 3]
    assert ((grid >= 0) & (grid <= 1)).all()
