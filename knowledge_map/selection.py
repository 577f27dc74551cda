"""Which question to ask next, and what to read next (the page's ``site/js/knowledge.js`` mirrors both).

Next question
-------------
Ask where an answer would teach us most about the whole map.  Under the
model of :mod:`knowledge_map.knowledge` an article's ability has posterior
variance ``1 / h_i``; answering question ``q`` adds the information
``w_iq p_iq (1 - p_iq)`` (``p_iq = sigma(theta_i - b_q)``) to every article
in its list, whatever the outcome (the Laplace approximation), so the
expected reduction of uncertainty summed over the articles is::

    gain(q) = sum_i [ 1 / h_i - 1 / (h_i + w_iq p_iq (1 - p_iq)) ]

It is large for a question whose articles are many (representative),
strongly tied to it, and still uncertain (far from what was asked).  A
``focus`` mask restricts the sum to the articles the learner chose (the area
in view): the question then asked is the one that teaches most about that
area.  Ties go to the lower question index; answered and skipped questions
are not candidates (a skipped one comes back when nothing else is left).

What to read next
-----------------
Articles the learner probably does not know yet but that sit next to what
they do know: ``score_i = known_i / (known_i + prior_weight) * (1 - value_i)``
with ``known_i`` the summed kernel weight of right answers.  Without a
right answer, the articles next to the wrong ones (``evidence_i`` instead of
``known_i``): what the learner missed.  The article each answered question
is most tied to (the head of its list, usually the question's source) is
left out: the quiz has already asked about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from knowledge_map.knowledge import ArticleState, NeighbourLists, sigmoid


def question_gain(lists: NeighbourLists, q: int, state: ArticleState, difficulty: float, focus=None) -> float:
    """Expected reduction of the summed posterior variance from answering question ``q``."""
    rows, weights = lists.of(q)
    h = state.information[rows]
    p = sigmoid(state.theta[rows] - difficulty)
    added = weights * p * (1.0 - p)
    terms = 1.0 / h - 1.0 / (h + added)
    if focus is not None:
        terms = terms * np.asarray(focus, dtype=bool)[rows]
    return float(terms.sum())


def next_question(lists: NeighbourLists, state: ArticleState, difficulties: Sequence[float],
                  exclude: Iterable[int] = (), focus=None) -> int | None:
    """The candidate with the largest :func:`question_gain` (lower index on ties), or None."""
    excluded = set(exclude)
    best, best_gain = None, -np.inf
    for q in range(lists.n_questions):
        if q in excluded:
            continue
        gain = question_gain(lists, q, state, float(difficulties[q]), focus)
        if gain > best_gain:
            best, best_gain = q, gain
    return best


def reading_list(state: ArticleState, lists: NeighbourLists, answered: Iterable[int], prior_weight: float,
                 count: int = 5) -> list[int]:
    """Rows of the ``count`` articles to read next (see the module docstring), best first, ties by row."""
    support = state.known if state.known.max(initial=0.0) > 0 else state.evidence
    score = support / (support + prior_weight) * (1.0 - state.value)
    for q in answered:
        rows, _ = lists.of(int(q))
        if len(rows):
            score[rows[0]] = 0.0
    order = np.lexsort((np.arange(len(score)), -score))
    return [int(i) for i in order[:count] if score[i] > 0]
