"""Cell labels (c-TF-IDF, central articles) and map metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from knowledge_map.embed import l2_normalise
from knowledge_map.labels import cell_labels, class_tfidf, top_terms
from knowledge_map.metrics import topic_knn_accuracy, trustworthiness


def test_class_tfidf_prefers_terms_specific_to_a_class():
    # Two classes, three terms: "common" everywhere, "alpha" in class 0, "beta" in class 1.
    counts = sp.csr_matrix(np.array([[5.0, 3.0, 0.0], [5.0, 0.0, 3.0]]))
    weights = class_tfidf(counts)
    vocabulary = np.array(["common", "alpha", "beta"])
    assert top_terms(weights, vocabulary, 0, 1) == ["alpha"]
    assert top_terms(weights, vocabulary, 1, 1) == ["beta"]
    # The formula: tf/|c| * log(1 + A/f(t)), A = mean class size = 8.
    assert weights[0, 1] == pytest.approx(3 / 8 * np.log1p(8 / 3))


def test_cells_are_labelled_by_their_most_central_article():
    xy = np.array([[0.1, 0.1], [0.12, 0.1], [0.14, 0.1], [0.9, 0.9]])
    embeddings = l2_normalise(np.array([[1.0, 0.1], [1.0, 0.0], [1.0, -0.3], [0.0, 1.0]]))
    documents = ["volcano lava", "volcano eruption magma", "volcano ash", "violin orchestra"]
    titles = ["Lava", "Volcano", "Ash", "Violin"]
    labels = cell_labels([2], xy, embeddings, documents, ["a", "b", "c", "d"], titles)
    cells = {(c["gx"], c["gy"]): c for c in labels["levels"][0]["cells"]}
    low, high, empty = cells[(0, 0)], cells[(1, 1)], cells[(1, 0)]
    assert low["article_count"] == 3 and low["label"] == "Volcano"
    assert low["keywords"][0] == "volcano"
    assert [a["title"] for a in low["top_articles"]] == ["Volcano", "Lava", "Ash"]
    assert high["label"] == "Violin" and set(high["keywords"]) == {"violin", "orchestra"}
    assert empty["article_count"] == 0 and empty["label"] is None and empty["empty"]
    assert (low["center_x"], low["center_y"]) == (0.25, 0.25)


def test_trustworthiness_is_high_for_a_faithful_map_and_low_for_noise():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(300, 2))
    embeddings = np.hstack([plane, np.ones((300, 1)) * 5])
    assert trustworthiness(embeddings, plane, k=10) > 0.97
    assert trustworthiness(embeddings, rng.normal(size=(300, 2)), k=10) < 0.7


def test_topic_knn_accuracy_separates_clusters_and_ignores_catch_all():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    topics = np.repeat(["A", "B", "C"], 40).tolist()
    features = np.repeat(centres, 40, axis=0) + rng.normal(size=(120, 2))
    assert topic_knn_accuracy(features, topics, k=5) == pytest.approx(1.0)
    mixed = topics[:-10] + ["Uncategorized"] * 10
    assert topic_knn_accuracy(features, mixed, k=5, ignore=("Uncategorized",)) == pytest.approx(1.0)
    assert topic_knn_accuracy(features, [None] * 120, k=5) is None
