"""The grid convention, nearest-neighbour search and question placement."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_map.embed import l2_normalise
from knowledge_map.grid import cell_center, cell_index
from knowledge_map.placement import (
    nearest_by_cosine,
    place_on_map,
    place_questions,
    rank_of,
    weighted_geometric_median,
)


def test_cell_centre_and_index_agree():
    n = 7
    centres = cell_center(np.arange(n), n)
    assert centres[0] == pytest.approx(0.5 / 7)
    assert cell_index(centres, n).tolist() == list(range(n))
    assert cell_index([0.0, 1.0, 0.999999], n).tolist() == [0, n - 1, n - 1]


def test_nearest_by_cosine_matches_brute_force_across_blocks():
    rng = np.random.default_rng(1)
    items, queries = l2_normalise(rng.normal(size=(1000, 16))), l2_normalise(rng.normal(size=(5, 16)))
    idx, sim = nearest_by_cosine(queries, items, 7, block=97)
    expected = np.argsort(-(queries @ items.T), axis=1)[:, :7]
    np.testing.assert_array_equal(idx, expected)
    assert (np.diff(sim, axis=1) <= 0).all()


def test_geometric_median_resists_an_outlier():
    points = np.array([[0.1, 0.1], [0.11, 0.1], [0.1, 0.11], [0.9, 0.9]])
    median = weighted_geometric_median(points, np.ones(4))
    mean = points.mean(axis=0)
    assert np.linalg.norm(median - [0.1, 0.1]) < 0.02
    assert np.linalg.norm(mean - [0.1, 0.1]) > 0.15


def test_a_clear_best_match_takes_the_question_next_to_its_article():
    """On its clearly best article, moved at most max_spread towards the other neighbours."""
    xy = np.array([[0.2, 0.2], [0.21, 0.2], [0.2, 0.22], [0.8, 0.8]])
    placed = place_on_map(np.array([[3, 0, 1, 2]]), np.array([[0.9, 0.8, 0.79, 0.78]]), xy, temperature=0.03)
    assert np.linalg.norm(placed[0] - [0.8, 0.8]) == pytest.approx(0.01, abs=1e-9)
    assert placed[0][0] < 0.8 and placed[0][1] < 0.8  # towards the others


def test_questions_sharing_their_best_article_part_by_their_other_neighbours():
    """Two questions on one article, whose second-best articles lie on opposite sides, get distinct
    positions, each still nearer to the shared article than to any other."""
    xy = np.array([[0.5, 0.5], [0.52, 0.5], [0.48, 0.5], [0.5, 0.53]])
    idx = np.array([[0, 1, 3], [0, 2, 3]])
    sim = np.array([[0.9, 0.75, 0.6], [0.9, 0.75, 0.6]])
    placed = place_on_map(idx, sim, xy)
    assert placed[0][0] > 0.5 > placed[1][0]
    for p in placed:
        d = np.linalg.norm(xy - p, axis=1)
        assert d.argmin() == 0


def test_near_ties_put_the_question_inside_the_main_group_not_between_groups():
    xy = np.array([[0.2, 0.2], [0.22, 0.2], [0.2, 0.22], [0.8, 0.8]])
    placed = place_on_map(np.array([[3, 0, 1, 2]]), np.array([[0.80, 0.80, 0.80, 0.80]]), xy, temperature=0.03)
    assert np.linalg.norm(placed[0] - [0.207, 0.207]) < 0.02


def test_rank_of():
    assert rank_of(2, np.array([0.1, 0.9, 0.5]), higher_is_closer=True) == 2
    assert rank_of(0, np.array([0.1, 0.9, 0.5]), higher_is_closer=False) == 1


def test_place_questions_reports_ranks_in_both_spaces():
    rng = np.random.default_rng(0)
    embeddings = l2_normalise(rng.normal(size=(50, 8)))
    xy = rng.uniform(size=(50, 2))
    titles = [f"T{i}" for i in range(50)]
    questions = [
        {"question": "q", "options": ["a", "b"], "correctIndex": 0, "source_article": "T7", "x": 9, "y": 9},
        {"question": "r", "options": ["a", "b"], "correctIndex": 1, "source_article": "Not in corpus"},
    ]
    placed = place_questions(questions, embeddings[[7, 8]], embeddings, xy, titles, k=1)
    assert placed[0]["rank_embedding"] == 1 and placed[0]["source_row"] == 7
    # With k=1 the question sits on its single nearest article, which is its source.
    assert placed[0]["rank_map"] == 1
    assert (placed[0]["x"], placed[0]["y"]) == pytest.approx(tuple(xy[7]))
    assert placed[1]["source_row"] is None and "rank_map" not in placed[1]
