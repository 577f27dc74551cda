"""The knowledge estimate on the embedded default map, with simulated learners.

Needs a finished default run (``snakemake -c2``): the merged embeddings, the
map, the placed questions and the question embeddings under results/.

``defaults``
    Leave-one-out AUC of held-out answers (the validation of
    :mod:`knowledge_map.validation`) for kernels and settings, on simulated
    learners of two kinds that the estimator does not assume: knowledge as
    bumps on the 2-D map (:mod:`knowledge_map.devtools.simulated_learners`) and
    knowledge by topic (a per-topic ability; topics are the corpus's
    categories, never seen by the estimator).  Plus the rank correlation of
    map distance with embedding dissimilarity over question pairs.
``sparse``
    What the per-question neighbour lists cost against the full computation,
    by list length.
``order``
    Answers needed to reach a given AUC over all articles (estimate vs the
    simulated truth) when questions come in the file's order, at random, or
    by the adaptive rule of :mod:`knowledge_map.selection`; from the shipped
    60 questions, or (``--pool N``) from N questions about random articles.

``defaults --questions clustered`` asks, instead of the shipped 60 (which
name their articles and spread over every topic, so questions barely weigh
each other), 39 questions in three tight groups of 13: the articles nearest
to three seed articles, as a quiz on three lectures would be.  There the
kernel between questions acts, and the settings are judged where it does.

    python benchmarks/knowledge.py defaults|sparse|order [--learners N] [--pool N] [--questions clustered]

Each prints one JSON object as its last line (also written to benchmarks/out/).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from knowledge_map.similarity import dissimilarity_unit

RESULTS = Path("results/all-MiniLM-L6-v2")


def load():
    from knowledge_map.corpus import read_corpus
    from knowledge_map.mapping import read_coords
    from knowledge_map.merge import read_embeddings
    from knowledge_map.questions import read_question_embeddings

    embeddings = read_embeddings(str(RESULTS / "embeddings.h5")).astype(np.float64)
    xy, _ = read_coords(str(RESULTS / "map/coords.h5"))
    placed = json.loads((RESULTS / "map/questions.json").read_text())
    q_emb, _ = read_question_embeddings(RESULTS / "questions.h5")
    topics = read_corpus("results/corpus.parquet", columns=("topic",)).column("topic").to_pylist()
    q_xy = np.array([[q["x"], q["y"]] for q in placed])
    return embeddings, xy, placed, q_emb.astype(np.float64), q_xy, topics


#: Simulated learners by topic: (sd of overall ability, sd of each topic's effect).  "topic" is the world
#: the defaults were first chosen on; "mixed" gives learners the spread of overall ability real quizzes show.
WORLDS = {"topic": (0.5, 1.5), "mixed": (1.0, 0.75)}


def simulated_responses(kind, n_learners, q_xy, q_topics, xy, rng):
    """A Responses object of ``n_learners`` answering every question once, in one session."""
    from knowledge_map.devtools.simulated_learners import simulate_difficulties, simulate_learner
    from knowledge_map.responses import Responses

    n_q = len(q_xy)
    b = simulate_difficulties(n_q, rng)
    learners, questions, correct = [], [], []
    topic_names = sorted(set(q_topics))
    for learner in range(n_learners):
        if kind == "map":
            theta = simulate_learner(xy, q_xy, rng).question_theta
        else:  # topic: mostly what the learner knows by topic; mixed: mostly how much they know overall
            overall, by_topic = WORLDS[kind]
            effect = dict(zip(topic_names, rng.normal(0.0, by_topic, size=len(topic_names))))
            theta = rng.normal(0.0, overall) + np.array([effect[t] for t in q_topics])
        p = 1.0 / (1.0 + np.exp(-(theta - b)))
        outcome = (rng.random(n_q) < p).astype(int)
        learners += [f"L{learner}"] * n_q
        questions += list(range(n_q))
        correct += outcome.tolist()
    n = len(correct)
    return Responses(np.array(learners, dtype=object), np.array(["s"] * n, dtype=object),
                     np.array(questions), np.array(correct))


def clustered_questions(embeddings, rng, groups: int = 3, size: int = 13) -> np.ndarray:
    """Rows of ``groups`` x ``size`` articles: each seed article (at random) and its nearest in the embedding space."""
    chosen: list[int] = []
    for seed in rng.choice(len(embeddings), groups, replace=False):
        order = np.argsort(-(embeddings @ embeddings[seed]), kind="stable")
        chosen += [int(i) for i in order if i not in chosen][:size]
    return np.array(chosen)


def cmd_defaults(args):
    from scipy.stats import spearmanr

    from knowledge_map.knowledge import Settings, neighbour_lists, question_weights
    from knowledge_map.validation import PageView, other_learners_difficulty, readout_articles, validate

    embeddings, xy, placed, q_emb, q_xy, topics = load()
    unit = dissimilarity_unit(embeddings)  # as the workflow: T in the space's dissimilarity unit
    q_topics = [q["topic"] for q in placed]
    if args.questions == "clustered":
        chosen = clustered_questions(embeddings, np.random.default_rng(11))
        q_emb, q_xy, q_topics = embeddings[chosen], xy[chosen], [topics[i] or "none" for i in chosen]
    keys = [str(i) for i in range(len(q_emb))]
    if args.grid == "all":
        candidates = [Settings("map", sigma=s, prior_weight=p) for s in (0.05, 0.15) for p in (0.1, 1.0)]
        candidates += [Settings("embedding", temperature=t, prior_weight=p, unit=unit)
                       for t in (0.05, 0.1, 0.15, 0.2, 0.3) for p in (0.0003, 0.001, 0.003, 0.01, 0.03)]
    else:  # the default and the seed's kernel
        candidates = [Settings("map", sigma=0.15, prior_weight=0.1), Settings(unit=unit)]
    out = {"learners": args.learners, "seeds": args.seeds, "fields": {}}
    for kind in ("map", "topic", "mixed"):
        rows = []
        for seed in range(args.seeds):
            responses = simulated_responses(kind, args.learners, q_xy, q_topics, xy, np.random.default_rng(seed))
            without = other_learners_difficulty(responses, len(keys))
            for settings in candidates:
                weights = question_weights(settings, q_emb, q_emb, q_xy, q_xy)
                page = None
                if args.page:  # the page's readout at each question (default raster 256, bandwidth 2)
                    lists = neighbour_lists(settings, args.neighbours, q_emb, embeddings, q_xy, xy)
                    page = PageView(lists, readout_articles(xy, q_xy, 256, 2.0))
                _, summary = validate(responses, weights, settings, keys, permutations=0, difficulty_without=without,
                                      page=page)
                session = summary["sessions"]["s"]
                rows.append((settings, seed, session["auc_pooled"], session["auc_within_learner"]))
        table = {}
        for settings in candidates:
            mine = [r for r in rows if r[0] == settings]
            name = (f"map sigma={settings.sigma} w0={settings.prior_weight}" if settings.kernel == "map"
                    else f"embedding T={settings.temperature} w0={settings.prior_weight}")
            table[name] = {
                "pooled_auc": float(np.mean([r[2]["estimate"] for r in mine])),
                "within_learner_auc": float(np.mean([r[3]["estimate"] for r in mine])),
                "within_learner_auc_calibrated": float(np.mean([r[3]["estimate_calibrated"] for r in mine])),
                "pooled_auc_calibrated": float(np.mean([r[2]["estimate_calibrated"] for r in mine])),
                "own_proportion_pooled": float(np.mean([r[2]["own_proportion"] for r in mine])),
                "difficulty_only_pooled": float(np.mean([r[2]["difficulty_only"] for r in mine])),
                **{f"{key}_pooled": float(np.mean([r[2][key] for r in mine]))
                   for key in ("ability_difficulty", "page", "page_calibrated", "page_question") if key in mine[0][2]},
            }
        out["fields"][kind] = table
    iu = np.triu_indices(len(q_emb), 1)
    dissimilarity = 1.0 - (q_emb @ q_emb.T)[iu]
    distance = np.hypot(q_xy[:, None, 0] - q_xy[None, :, 0], q_xy[:, None, 1] - q_xy[None, :, 1])[iu]
    out["question_pairs_spearman_map_distance_vs_embedding_dissimilarity"] = float(spearmanr(distance, dissimilarity)[0])
    return out


def cmd_sparse(args):
    from knowledge_map.knowledge import Settings, neighbour_lists, sparse_error

    embeddings, xy, placed, q_emb, q_xy, _ = load()
    out = {}
    for prior in args.priors:
        settings = Settings(temperature=args.temperature, prior_weight=prior, unit=dissimilarity_unit(embeddings))
        for k in args.lengths:
            lists = neighbour_lists(settings, k, q_emb, embeddings)
            error = sparse_error(lists, settings, q_emb, embeddings, answer_counts=(3, 10, 30), trials=10)
            out[f"prior {prior}, {k} neighbours"] = {
                "bytes": int(lists.rows.nbytes + lists.weights.nbytes + lists.offsets.nbytes), **error}
            print(prior, k, error["overall"], flush=True)
    return out


def cmd_order(args):
    from knowledge_map.devtools.simulated_learners import simulate_difficulties, simulate_learner
    from knowledge_map.knowledge import Settings, neighbour_lists, state_from_lists
    from knowledge_map.selection import next_question
    from knowledge_map.validation import auc

    embeddings, xy, placed, q_emb, q_xy, _ = load()
    if args.pool:
        # A larger pool: questions "about" random articles (their own embedding and place).
        chosen = np.random.default_rng(7).choice(len(embeddings), args.pool, replace=False)
        q_emb, q_xy = embeddings[chosen], xy[chosen]
    settings = Settings(temperature=args.temperature, prior_weight=args.prior_weight, unit=dissimilarity_unit(embeddings))
    lists = neighbour_lists(settings, args.neighbours, q_emb, embeddings)
    n_q = len(q_xy)
    steps = list(range(1, args.steps + 1))
    curves = {"fixed": [], "random": [], "adaptive": []}
    for index in range(args.learners):
        rng = np.random.default_rng(1000 + index)
        learner = simulate_learner(xy, q_xy, rng)
        b = simulate_difficulties(n_q, rng)
        truth = learner.known(float(b.mean()))
        if truth.all() or not truth.any():
            continue
        outcomes = {q: learner.answer(q, b[q], rng) for q in range(n_q)}  # same answers whatever the order
        random_order = rng.permutation(n_q).tolist()
        for order in curves:
            answered, curve = [], []
            state = state_from_lists(lists, answered, [], np.zeros(n_q), settings)
            for _step in steps:
                if order == "fixed":
                    q = len(answered)
                elif order == "random":
                    q = random_order[len(answered)]
                else:
                    q = next_question(lists, state, np.zeros(n_q), exclude=answered)
                answered.append(q)
                state = state_from_lists(lists, answered, [outcomes[q] for q in answered], np.zeros(n_q), settings)
                curve.append(auc(state.value, truth))
            curves[order].append(curve)
        print(index, {k: round(v[-1][-1], 3) for k, v in curves.items()}, flush=True)
    out = {"learners": len(curves["fixed"]), "neighbours": args.neighbours, "pool": args.pool or "shipped 60",
           "mean_auc_by_answers": {}, "answers_for_mean_auc": {}}
    means = {order: np.array(rows, dtype=np.float64).mean(axis=0) for order, rows in curves.items()}
    for order, mean in means.items():
        out["mean_auc_by_answers"][order] = [round(float(v), 4) for v in mean]
    # Answers each order needs before its mean AUC (over learners) first reaches a level.
    for level in (0.55, 0.56, 0.57, 0.58, 0.59, 0.6, 0.62):
        out["answers_for_mean_auc"][str(level)] = {
            order: (int(np.argmax(mean >= level)) + 1 if (mean >= level).any() else None) for order, mean in means.items()}
    return out


def main(argv=None):
    from knowledge_map.knowledge import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["defaults", "sparse", "order"])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--grid", choices=["all", "default"], default="all",
                        help="defaults: every setting, or the default and the seed's")
    parser.add_argument("--page", action="store_true", help="defaults: also score the page's heat readout at each question")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--neighbours", type=int, default=1000)
    parser.add_argument("--priors", type=float, nargs="+", default=[0.003, 0.01], help="sparse: prior weights")
    parser.add_argument("--lengths", type=int, nargs="+", default=[500, 1000, 2000, 4000], help="sparse: list lengths")
    parser.add_argument("--pool", type=int, default=0, help="order: N random articles as the question pool (0: the shipped 60)")
    parser.add_argument("--temperature", type=float, default=Settings.temperature, help="sparse, order: the kernel's T")
    parser.add_argument("--prior-weight", type=float, default=Settings.prior_weight, help="order: the prior's weight")
    parser.add_argument("--questions", choices=["shipped", "clustered"], default="shipped",
                        help="defaults: the shipped 60, or 39 in three tight groups (a quiz on three lectures)")
    args = parser.parse_args(argv)
    result = {"defaults": cmd_defaults, "sparse": cmd_sparse, "order": cmd_order}[args.command](args)
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    suffix = f"-pool{args.pool}" if args.command == "order" and args.pool else ""
    suffix += "-clustered" if args.questions == "clustered" else ""
    if args.command in ("sparse", "order") and (args.temperature, args.prior_weight) != (Settings.temperature,
                                                                                         Settings.prior_weight):
        suffix += f"-T{args.temperature}-p{args.prior_weight}"
    (out / f"knowledge-{args.command}{suffix}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
