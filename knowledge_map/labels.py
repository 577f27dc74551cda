"""Label grid cells of the map from the articles inside them.

Each level cuts the unit square into ``n x n`` cells (see :mod:`knowledge_map.grid`).
A cell's keywords are its top class-based TF-IDF terms (c-TF-IDF, as in
BERTopic: all articles of a cell form one document, the "class"):

    w(t, c) = tf(t, c) / |c| * log(1 + A / f(t))

where tf(t, c) counts term t in cell c, |c| is the number of terms in c,
A is the mean number of terms per non-empty cell and f(t) the count of t in
all cells.  A cell's label is the title of its most central article: the
one whose embedding is closest (cosine) to the mean embedding of the cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from knowledge_map.grid import cell_center, cell_index


def term_counts(documents: list[str], max_features: int = 50000):
    """Sparse article x term counts and the vocabulary (English stop words removed, words of 3+ letters)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
        max_features=max_features,
        min_df=1,
        dtype=np.float64,
    )
    counts = vectorizer.fit_transform(documents)
    return counts.tocsr(), np.asarray(vectorizer.get_feature_names_out())


def class_tfidf(class_counts: sp.csr_matrix) -> sp.csr_matrix:
    """c-TF-IDF weights of a class x term count matrix (formula in the module docstring)."""
    class_counts = sp.csr_matrix(class_counts, dtype=np.float64)
    sizes = np.asarray(class_counts.sum(axis=1)).ravel()
    term_totals = np.asarray(class_counts.sum(axis=0)).ravel()
    non_empty = sizes > 0
    mean_size = sizes[non_empty].mean() if non_empty.any() else 0.0
    idf = np.log1p(mean_size / np.maximum(term_totals, 1e-12))
    tf = sp.diags(1.0 / np.where(non_empty, sizes, 1.0)) @ class_counts
    return sp.csr_matrix(tf @ sp.diags(idf))


def top_terms(weights: sp.csr_matrix, vocabulary: np.ndarray, row: int, count: int) -> list[str]:
    """The ``count`` highest-weighted terms of a row, ties broken alphabetically."""
    start, stop = weights.indptr[row], weights.indptr[row + 1]
    values, columns = weights.data[start:stop], weights.indices[start:stop]
    order = np.lexsort((vocabulary[columns], -values))[:count]
    return [str(vocabulary[columns[i]]) for i in order if values[i] > 0]


def central_members(members: np.ndarray, embeddings: np.ndarray, count: int) -> list[int]:
    """Rows of ``members`` ordered by cosine similarity to their mean embedding, best first."""
    vectors = embeddings[members]
    centroid = vectors.mean(axis=0)
    norm = np.linalg.norm(centroid)
    sims = vectors @ (centroid / norm if norm > 0 else centroid)
    order = np.lexsort((members, -sims))[:count]
    return [int(members[i]) for i in order]


def label_level(
    n: int,
    xy: np.ndarray,
    embeddings: np.ndarray,
    counts: sp.csr_matrix,
    vocabulary: np.ndarray,
    ids: list[str],
    titles: list[str],
    n_keywords: int = 5,
    n_top: int = 5,
) -> dict[str, Any]:
    """Every cell of an ``n x n`` grid: position, label, keywords, count and top articles."""
    gx, gy = cell_index(xy[:, 0], n), cell_index(xy[:, 1], n)
    cell = gy * n + gx
    membership = sp.csr_matrix((np.ones(len(cell)), (cell, np.arange(len(cell)))), shape=(n * n, len(cell)))
    weights = class_tfidf(membership @ counts)
    order = np.argsort(cell, kind="stable")
    starts = np.searchsorted(cell[order], np.arange(n * n + 1))
    cells = []
    for c in range(n * n):
        members = order[starts[c] : starts[c + 1]]
        top = central_members(members, embeddings, n_top) if len(members) else []
        cells.append(
            {
                "gx": c % n,
                "gy": c // n,
                "center_x": float(cell_center(c % n, n)),
                "center_y": float(cell_center(c // n, n)),
                "article_count": int(len(members)),
                "label": titles[top[0]] if top else None,
                "keywords": top_terms(weights, vocabulary, c, n_keywords) if len(members) else [],
                "top_articles": [{"row": r, "id": ids[r], "title": titles[r]} for r in top],
                "empty": not len(members),
            }
        )
    return {"n": n, "cells": cells}


def cell_labels(
    levels: list[int],
    xy: np.ndarray,
    embeddings: np.ndarray,
    documents: list[str],
    ids: list[str],
    titles: list[str],
    n_keywords: int = 5,
    n_top: int = 5,
) -> dict[str, Any]:
    """Labels for every level, coarsest first, with the grid convention spelled out."""
    counts, vocabulary = term_counts(documents)
    return {
        "convention": "cell (gx, gy) of an n x n grid spans [gx/n, (gx+1)/n) x [gy/n, (gy+1)/n); centre = ((gx+0.5)/n, (gy+0.5)/n)",
        "levels": [
            label_level(n, xy, embeddings, counts, vocabulary, ids, titles, n_keywords, n_top) for n in sorted(levels)
        ],
    }
