"""Cell labels (c-TF-IDF keywords, names from defining phrases and titles), the label measure, map metrics."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import spread_articles

from knowledge_map.embed import l2_normalise
from knowledge_map.label_quality import adjacent_repeats, label_metrics, neighbourhood_scores, parent_repeats
from knowledge_map.labels import cell_labels, class_tfidf, coverage, top_terms
from knowledge_map.metrics import topic_knn_accuracy, trustworthiness
from knowledge_map.phrases import defining_parts, defining_phrase, display_noun, plural, singular


def test_class_tfidf_prefers_terms_specific_to_a_class():
    # Two classes, three terms: "common" everywhere, "alpha" in class 0, "beta" in class 1.
    counts = sp.csr_matrix(np.array([[5.0, 3.0, 0.0], [5.0, 0.0, 3.0]]))
    weights = class_tfidf(counts)
    vocabulary = np.array(["common", "alpha", "beta"])
    assert top_terms(weights, vocabulary, 0, 1) == ["alpha"]
    assert top_terms(weights, vocabulary, 1, 1) == ["beta"]
    # The formula: tf/|c| * log(1 + A/f(t)), A = mean class size = 8.
    assert weights[0, 1] == pytest.approx(3 / 8 * np.log1p(8 / 3))


def test_cells_list_keywords_and_central_articles_and_sit_on_their_articles():
    xy = np.array([[0.1, 0.1], [0.12, 0.1], [0.14, 0.1], [0.9, 0.9]])
    embeddings = l2_normalise(np.array([[1.0, 0.1], [1.0, 0.0], [1.0, -0.3], [0.0, 1.0]]))
    texts = ["volcano lava", "volcano eruption magma", "volcano ash", "violin orchestra"]
    titles = ["Lava", "Volcano", "Ash", "Violin"]
    labels = cell_labels([2], xy, embeddings, texts, ["a", "b", "c", "d"], titles)
    cells = {(c["gx"], c["gy"]): c for c in labels["levels"][0]["cells"]}
    low, high, empty = cells[(0, 0)], cells[(1, 1)], cells[(1, 0)]
    assert low["article_count"] == 3 and low["keywords"][0] == "volcano"
    assert [a["title"] for a in low["top_articles"]] == ["Volcano", "Lava", "Ash"]
    assert set(high["keywords"]) == {"violin", "orchestra"}
    assert empty["article_count"] == 0 and empty["label"] is None and empty["empty"]
    assert (low["center_x"], low["center_y"]) == (0.25, 0.25)
    assert (low["x"], low["y"]) == pytest.approx((0.12, 0.1))  # the mass of its articles, not the centre


# ---------------------------------------------------------------- names

COUNTRIES = [
    ("Mali", "Mali is a landlocked country in West Africa. It borders seven countries."),
    ("Chad", "Chad is a landlocked country in Central Africa. Its neighbouring countries are six."),
    ("Niger", "Niger is a landlocked country in West Africa, named after the Niger River."),
    ("Ghana", "Ghana is a country in West Africa on the Gulf of Guinea."),
]
BIRDS = [
    ("Robin", "The robin is a small bird of Europe. Birds of this kind sing."),
    ("Sparrow", "The sparrow is a bird that lives near people; many birds do."),
    ("Eagle", "The eagle is a large bird of prey. Eagles are birds with strong beaks."),
]


def two_regions(extra=(), embed=None):
    records = COUNTRIES + BIRDS + list(extra)
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(len(COUNTRIES))]
                  + [[0.6 + 0.01 * i, 0.1] for i in range(len(BIRDS))]
                  + [[0.9, 0.9]] * len(extra))
    embeddings = l2_normalise(np.random.default_rng(0).normal(size=(len(records), 8)))
    titles = [t for t, _ in records]
    return cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles, embed=embed)["levels"][0]["cells"]


def test_cells_are_named_by_the_kind_their_articles_define_in_the_plural():
    cells = {(c["gx"], c["gy"]): c for c in two_regions()}
    assert cells[(0, 0)]["label"] == "Countries"
    assert cells[(1, 0)]["label"] == "Birds"


def test_defining_phrases_read_the_head_noun_and_skip_kind_words():
    vocab = {"countries", "birds", "cities", "languages", "fields", "branches"}
    assert defining_phrase("Mali is a landlocked country in West Africa.", vocab) == ["landlocked", "country"]
    assert defining_phrase("The robin is a species of bird found in Europe.", vocab) == ["bird"]
    assert defining_phrase("Kannada is a Dravidian language spoken in India.", vocab) == ["Dravidian", "language"]
    assert defining_parts("Jodhpur is the second-largest city in Rajasthan, India.", vocab)[1:3] == ("in", "Rajasthan")
    assert defining_phrase("Ozone depletion consists of two events.", vocab) == []


def test_defining_phrases_say_whether_a_or_an_led_them():
    """"a landlocked country" is countable evidence; "the city", and "a" before a kind word ("a species of bird"), are not."""
    vocab = {"countries", "birds", "cities"}
    assert defining_parts("Mali is a landlocked country in West Africa.", vocab).indefinite
    assert not defining_parts("Jodhpur is the second-largest city in Rajasthan.", vocab).indefinite
    assert not defining_parts("The robin is a species of bird.", vocab).indefinite
    assert not defining_parts("Samba is music of Brazil.", vocab).indefinite


def test_plurals_and_singulars_follow_english_spelling_and_the_corpus():
    assert [plural(w) for w in ("city", "bird", "church", "genus", "species", "person", "day")] == [
        "cities", "birds", "churches", "genera", "species", "people", "days"]
    assert singular("cities", {"city"}) == "city" and singular("mathematics", {"city"}) == "mathematics"
    assert display_noun("city", {"cities"}) == "cities"
    assert display_noun("music", {"cities"}) == "music"  # no plural in the corpus: kept singular


def fake_model(dim):
    """A stand-in for the model: any text -> a seeded unit vector of ``dim`` from its characters."""
    return lambda texts: l2_normalise(np.array(
        [np.random.default_rng(sum(map(ord, t))).normal(size=dim) for t in texts]).reshape(len(texts), dim))


@pytest.mark.parametrize("embed", [None, fake_model(2)])
def test_an_empty_vocabulary_cell_does_not_crash_and_takes_its_central_title(embed):
    """Texts with no usable word (digits, punctuation) give sklearn's "empty vocabulary"."""
    xy = np.array([[0.1, 0.1], [0.2, 0.1], [0.9, 0.9]])
    embeddings = l2_normalise(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    labels = cell_labels([2], xy, embeddings, ["123 456", "!!! ???", "42"], ["a", "b", "c"], ["A1", "B2", "C3"],
                         embed=embed)
    cells = {(c["gx"], c["gy"]): c for c in labels["levels"][0]["cells"]}
    assert cells[(0, 0)]["label"] in ("A1", "B2") and cells[(0, 0)]["keywords"] == []
    assert cells[(1, 1)]["label"] == "C3"


@pytest.mark.parametrize("embed", [None, fake_model(8)])
def test_a_cell_of_one_article_gets_a_short_label(embed):
    """One article alone in its cell: a name of at most four words (its kind or its title)."""
    cells = {(c["gx"], c["gy"]): c for c in two_regions([("Volcano", "A volcano is a vent in the crust of a planet.")],
                                                        embed)}
    alone = cells[(1, 1)]
    assert alone["article_count"] == 1
    assert alone["label"] and len(alone["label"].split()) <= 4
    assert alone["top_articles"][0]["title"] == "Volcano"


@pytest.mark.parametrize("embed", [None, fake_model(4)])
def test_non_english_text_is_labelled_without_crashing(embed):
    """No English defining phrase: labels fall back to a title of at most four words, keywords still work."""
    texts = ["Le Mali est un pays d'Afrique de l'Ouest.", "北京是中华人民共和国的首都。",
             "القاهرة هي عاصمة مصر.", "Der Adler ist ein großer Greifvogel."]
    titles = ["Mali (pays)", "北京", "القاهرة", "Adler"]
    xy = np.array([[0.1, 0.1], [0.6, 0.1], [0.1, 0.6], [0.6, 0.6]])
    embeddings = l2_normalise(np.eye(4))
    labels = cell_labels([2, 4], xy, embeddings, texts, titles, titles, embed=embed)
    for level in labels["levels"]:
        for cell in level["cells"]:
            if cell["article_count"]:
                assert cell["label"] in titles and len(cell["label"].split()) <= 4


def test_labels_have_at_most_four_words():
    for cell in two_regions([("Volcano", "A volcano is a vent in the crust of a planet.")]):
        assert cell["label"] is None or len(cell["label"].split()) <= 4


def test_coverage_is_half_definitions_half_mentions_and_uses_the_rarest_word():
    define = np.array([[2.0, 0.0]])
    mention = np.array([[4.0, 1.0]])  # word 0 mentioned by all 4 articles, word 1 by one
    words = np.array([[0, -1], [0, 1]])  # candidate 0: word 0; candidate 1: words 0 and 1
    np.testing.assert_allclose(coverage(define, mention, words, np.array([4])), [[0.75, 0.125]])


def test_a_name_used_next_door_is_penalised_so_neighbours_differ():
    records = COUNTRIES * 2
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(4)] + [[0.6 + 0.01 * i, 0.1] for i in range(4)])
    texts = [x for _, x in records]
    titles = [f"{t} {i}" for i, (t, _) in enumerate(records)]
    embeddings = l2_normalise(np.random.default_rng(0).normal(size=(8, 4)))
    for penalty in (1.0, 0.5):
        n_by = cell_labels([2], xy, embeddings, texts, titles, titles, rules={"repeat_penalty": penalty})
        cells = [c["label"] for c in n_by["levels"][0]["cells"] if c["article_count"]]
        if penalty == 1.0:
            assert cells[0] == cells[1]
        else:
            assert cells[0] != cells[1]


# ---------------------------------------------------------------- the label measure

def test_neighbourhood_accuracy_counts_labels_closest_to_their_own_cell():
    n = 2
    means = np.eye(4)
    sizes = np.array([1, 1, 1, 1])
    right = {c: means[c] for c in range(4)}
    scores = neighbourhood_scores(n, right, means, sizes)
    assert scores["accuracy"] == 1.0 and scores["mean_similarity"] == 1.0 and scores["mean_margin"] == 1.0
    wrong = {0: means[3], 1: means[1]}  # cell 0's label points at cell 3
    scores = neighbourhood_scores(n, wrong, means, sizes)
    assert scores["accuracy"] == 0.5 and scores["mean_similarity"] == 0.5 and scores["cells"] == 2


def test_a_lone_cell_is_left_out_of_the_measure():
    means = np.eye(9)
    sizes = np.zeros(9, dtype=int)
    sizes[0] = 3  # only cell 0 is non-empty: nothing to confuse it with
    assert neighbourhood_scores(3, {0: means[0]}, means, sizes)["cells"] == 0


def test_label_metrics_compare_labels_with_the_keyword_baseline():
    xy = np.array([[0.1, 0.1], [0.2, 0.1], [0.9, 0.1]])
    vectors = l2_normalise(np.array([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 1.0, 0.0]]))
    level = {"n": 2, "cells": [
        {"gx": 0, "gy": 0, "label": "Birds", "article_count": 2, "keywords": ["wing", "feather", "beak"]},
        {"gx": 1, "gy": 0, "label": "Fish", "article_count": 1, "keywords": ["fin"]},
        {"gx": 0, "gy": 1, "label": None, "article_count": 0, "keywords": []},
    ]}
    table = {"Birds": [1.0, 0.0, 0.0], "Fish": [0.0, 1.0, 0.0], "wing, feather, beak": [0.0, 1.0, 0.0],
             "fin": [1.0, 0.0, 0.0]}
    seen = []

    def embed(texts):
        seen.extend(texts)
        return l2_normalise(np.array([table[t] for t in texts]))

    out = label_metrics({"levels": [level]}, xy, vectors, embed, ["Birds", "Robin"])["2"]
    assert out["labels"]["accuracy"] == 1.0 and out["keywords_top3"]["accuracy"] == 0.0
    assert out["labelled_cells"] == 2 and out["mean_words"] == 1.0 and out["max_words"] == 1
    assert out["share_titles"] == 0.5 and out["adjacent_repeats"] == 0.0
    assert len(seen) == len(set(seen))  # each text embedded once


def test_adjacent_repeats_count_touching_pairs_with_one_label():
    assert adjacent_repeats(2, {0: "A", 1: "A", 2: "B"}) == pytest.approx(1 / 3, abs=1e-4)
    assert adjacent_repeats(2, {0: "A"}) is None


def test_parent_repeats_count_fine_labels_equal_to_the_coarse_one_around_them():
    # 2 x 2 fine cells under one coarse cell labelled "A": one of four repeats it.
    assert parent_repeats(2, {0: "A", 1: "B", 2: "C", 3: "D"}, (1, {0: "A"})) == 0.25
    assert parent_repeats(2, {0: "A"}, None) is None


@pytest.mark.slow  # sklearn's n x n computation on 1,500 real embeddings
def test_trustworthiness_equals_sklearns():
    """Counting ranks in blocks gives sklearn's value (real embeddings, a real and a noisy map, every k used)."""
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    from knowledge_map.embed import embed_texts
    from knowledge_map.models import load_model

    model = load_model("all-MiniLM-L6-v2", "cpu", "float32", 64)
    embeddings = embed_texts(model, spread_articles(1500), 64)
    rng = np.random.default_rng(0)
    faithful = embeddings[:, :2] + 0.01 * rng.normal(size=(len(embeddings), 2))
    for xy in (faithful, rng.normal(size=(len(embeddings), 2))):
        for k in (5, 10):
            expected = sklearn_trustworthiness(embeddings, xy, n_neighbors=k, metric="cosine")
            # One rank differently ordered among exactly tied float32 distances moves T by 2 / (n k (2n - 3k - 1)),
            # 9e-8 here: allow a few such ties, nothing more.
            assert trustworthiness(embeddings, xy, k=k, block=97) == pytest.approx(expected, abs=5e-7)


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


def test_map_figure_writes_labels_at_their_articles_and_sizes_them_by_count(tmp_path):
    from knowledge_map.figure import label_anchor, label_fontsize, render_map

    assert label_anchor({"x": 0.1, "y": 0.2, "center_x": 0.25, "center_y": 0.25}) == (0.1, 0.2)
    assert label_anchor({"center_x": 0.25, "center_y": 0.75}) == (0.25, 0.75)  # files made before positions
    assert label_fontsize(1, 100) < label_fontsize(25, 100) < label_fontsize(100, 100) == 11.0
    cells = two_regions()
    render_map(str(tmp_path / "map.png"), np.random.default_rng(0).random((7, 2)), ["A"] * 7, [],
               {"n": 2, "cells": cells})
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- names chosen with the embedding model

def test_the_embedding_picks_the_shortlisted_name_that_points_at_its_own_cell():
    """Among the text rules' best names, the one nearest its own cell's articles and farthest from the neighbour's."""
    records = COUNTRIES + BIRDS
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(len(COUNTRIES))] + [[0.6 + 0.01 * i, 0.1] for i in range(len(BIRDS))])
    embeddings = np.zeros((len(records), 3))
    embeddings[: len(COUNTRIES), 0] = 1.0
    embeddings[len(COUNTRIES):, 1] = 1.0
    titles = [t for t, _ in records]
    seen = []

    def embed(texts):
        seen.extend(texts)
        # "Landlocked countries" points at the countries' cell; every other name sits between the two cells.
        return l2_normalise(np.array([[1.0, 0.0, 0.1] if t == "Landlocked countries" else [1.0, 1.0, 1.0] for t in texts]))

    plain = cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles)["levels"][0]["cells"]
    chosen = cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles, embed=embed)["levels"][0]["cells"]
    assert plain[0]["label"] == "Countries"
    assert chosen[0]["label"] == "Landlocked countries"
    assert len(seen) == len(set(seen))  # each name embedded once


def test_a_mass_noun_title_stays_singular_and_a_countable_head_takes_its_plural():
    """"Musics" is written by almost no article, so a concept title "Music" is not pluralised; "Rivers" is."""
    counts = sp.csr_matrix(np.array([[1, 0, 1, 1], [1, 0, 1, 0], [1, 1, 0, 1]], dtype=float))
    vocabulary = np.array(["music", "musics", "river", "rivers"], dtype=object)
    from knowledge_map.labels import used_plurals

    assert used_plurals(counts, vocabulary, ratio=0.5) == frozenset({"rivers"})


def test_a_mass_noun_head_stays_singular_and_a_countable_head_keeps_its_plural():
    """"Musics" (written once) is no label, though phrases have "music" as their head; a person noun keeps its plural
    although no article writes it more than once, and a word whose plural is common ("arts") keeps it."""
    from knowledge_map.labels import name_candidates, term_counts

    records = [
        ("Music", "Music is the art of sound; one article speaks of musics."),
        *[(f"Genre {i}", f"Genre {i} is the music of Place {i}.") for i in range(10)],  # "musics" in 1 of 11
        ("Politician", "A politician is a person active in politics; politicians."),
        ("Ann Lee", "Ann Lee was a politician."),
        ("Bob Ray", "Bob Ray was a politician."),
        ("Language", "Language is a system of signs; languages."),
        ("Tamil", "Tamil is a language of India."),
        ("Basque", "Basque is a language of Spain."),
        ("Art", "Art is a range of human activity; the arts."),
        ("Painting", "Painting is the art of applying paint. Arts."),
        ("Dance", "Dance is the art of movement. Arts and arts."),
    ]
    titles, texts = [t for t, _ in records], [x for _, x in records]
    counts, vocabulary = term_counts([f"{t} {x}" for t, x in records])
    candidates = name_candidates(titles, texts, counts, vocabulary)
    shown = dict(zip(candidates.keys, candidates.plain))
    assert shown[("music",)] == "music"  # own article opens "Music is", no phrase says "a music", "musics" is rare
    assert shown[("politician",)] == "politicians"  # its article opens "A politician is"
    assert shown[("language",)] == "languages"  # "Language is ...", but most phrases say "a language"
    assert shown[("art",)] == "arts"  # "Art is ...", no "an art", but "arts" is written as often as "art"


# Titles with a digit are no name candidates; the repeated words fill the cells' top keywords.
KINGS = [(f"K{i}", f"K{i} was a king of Zorland. Zorland marsh fen, zorland marsh fen.") for i in range(4)]
POETS = [(f"P{i}", f"P{i} was a poet of Zorland. Zorland marsh fen, zorland marsh fen.") for i in range(2)]
NEXT_DOOR = [(f"R{i}", f"R{i} was a king of Ostia. Ostia hill dale, ostia hill dale.") for i in range(3)] + [
    ("R3", "R3 was a king of Ostia. Kings and poets of Ostia hill dale, ostia hill dale.")]  # plurals: nouns


def kings_cell_label(general: int, written_join: list[float]) -> str:
    """The label of the cell of kings and poets, with "Kings and poets" as written embedded as ``written_join``."""
    records = KINGS + POETS + NEXT_DOOR
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(len(KINGS + POETS))]
                  + [[0.6 + 0.01 * i, 0.1] for i in range(len(NEXT_DOOR))])
    embeddings = l2_normalise(np.array([[1, 0, 0]] * len(KINGS) + [[0, 1, 0]] * len(POETS) + [[0, 0, 1]] * len(NEXT_DOOR),
                                       dtype=float))
    vectors = {"Kings": [1, 0, 0], "Poets": [0.3, 1, 0], "Kings and poets": written_join}

    def embed(texts):
        return l2_normalise(np.array([vectors.get(t, [0, 0, 1]) for t in texts], dtype=float))

    titles = [t for t, _ in records]
    levels = cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles,
                         rules={"shortlist": 1, "general": general}, embed=embed)
    return levels["levels"][0]["cells"][0]["label"]


@pytest.mark.parametrize("general, label", [(0, "Poets"), (1, "Kings and poets")])
def test_the_kind_most_articles_are_reaches_the_shortlist_though_the_neighbours_share_it(general, label):
    """Kings are two thirds of the cell but as common next door, so by the text rules "Poets" tells the cell apart
    best and "Kings" is not shortlisted; ``general`` adds the kind that defines the most of the cell's articles,
    and the model (here: "Kings" points at the cell) may choose it, then join the poets."""
    assert kings_cell_label(general, [1, 0.5, 0]) == label


def test_a_joined_label_that_as_written_points_at_a_neighbour_is_cut_to_its_best_prefix():
    """The join is chosen with the sum of its names' vectors; embedded as written, "Kings and poets" here points at
    the neighbouring cell, so the label is cut back to "Kings" (few cells: every joined label is checked); a join
    that points home stays."""
    assert kings_cell_label(1, [1, 0.5, 0]) == "Kings and poets"
    assert kings_cell_label(1, [0, 0.2, 1]) == "Kings"


@pytest.mark.parametrize("widen, label", [(0, "Kings"), (24, "Scribes")])
def test_a_label_that_points_at_a_neighbour_is_chosen_again_among_more_of_the_cells_kinds(widen, label):
    """Every shortlisted name ("Poets" by the text rules, "Kings" as the general kind, the text rules' pick) points
    at the neighbouring cell here; "Scribes", defining one article and mentioned next door (so far down the text
    rules' list), points home.  With ``widen`` the missed cell chooses again among its most-defining kinds and finds
    it; with 0 it keeps the best of its misses."""
    scribe = [("S0", "S0 was a scribe of Zorland. Zorland marsh fen, zorland marsh fen.")]
    next_door = [(t, x.replace("hill dale,", "hill dale, scribes,")) for t, x in NEXT_DOOR]
    records = KINGS + POETS + scribe + next_door
    home = len(KINGS + POETS + scribe)
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(home)] + [[0.6 + 0.01 * i, 0.1] for i in range(len(next_door))])
    embeddings = l2_normalise(np.array([[1, 0, 0]] * len(KINGS) + [[0, 1, 0]] * len(POETS) + [[1, 0, 0]]
                                       + [[0, 0, 1]] * len(next_door), dtype=float))
    vectors = {"Kings": [0.2, 0, 1], "Scribes": [1, 0.2, 0]}

    def embed(texts):
        return l2_normalise(np.array([vectors.get(t, [0, 0.1, 1]) for t in texts], dtype=float))

    titles = [t for t, _ in records]
    levels = cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles,
                         rules={"shortlist": 1, "general": 1, "widen": widen}, embed=embed)
    assert levels["levels"][0]["cells"][0]["label"] == label


@pytest.mark.parametrize("join_coverage, label", [(0, "Galaxies"), (0.5, "Galaxies and countries")])
def test_a_cell_of_two_kinds_joins_the_second_when_the_share_it_adds_outweighs_the_contrast_it_costs(join_coverage,
                                                                                                      label):
    """Half the cell is galaxies, half countries, and the cell next door holds countries too: "Galaxies" alone
    has the higher contrast (0.71 against 0.52 joined), but names only half the articles.  Joining by contrast
    alone keeps "Galaxies"; with ``join_coverage`` the share the join adds (1/2 -> all) outweighs it."""
    galaxies = [(f"G{i}", f"G{i} is a galaxy of Zorland. Galaxies, zorland marsh.") for i in range(3)]
    countries = [(f"C{i}", f"C{i} is a country of Zorland. Countries, zorland marsh.") for i in range(3)]
    next_door = [(f"N{i}", f"N{i} is a country of Ostia. Countries, ostia hill.") for i in range(3)]
    records = galaxies + countries + next_door
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(6)] + [[0.6 + 0.01 * i, 0.1] for i in range(3)])
    embeddings = l2_normalise(np.array([[1, 0, 0]] * 3 + [[0, 1, 0]] * 3 + [[0, 0.5, 0.87]] * 3, dtype=float))
    vectors = {"Galaxies": [1, 0, 0], "Countries": [0, 1, 0.2]}

    def embed(texts):
        parts = [[vectors[p] for p in vectors if p.lower() in t.lower()] or [[0, 0, 1]] for t in texts]
        return l2_normalise(np.array([np.sum(p, axis=0) for p in parts], dtype=float))

    titles = [t for t, _ in records]
    levels = cell_labels([2], xy, embeddings, [x for _, x in records], titles, titles,
                         rules={"join_coverage": join_coverage}, embed=embed)
    assert levels["levels"][0]["cells"][0]["label"] == label


def test_every_labels_setting_is_a_naming_rule_or_says_what_to_write():
    """The rule script passes the naming rules by ``RULE_KEYS``: a setting added to the schema but not there would
    be accepted and silently ignored."""
    from knowledge_map.config import validate_config
    from knowledge_map.labels import RULE_KEYS

    assert set(validate_config({})["labels"]) == {*RULE_KEYS, "levels", "keywords", "top_articles"}


@pytest.mark.parametrize("a, b, same", [
    ("novel", "novelist", True), ("german", "germany", True), ("mesopotamia", "mesopotamian", True),
    ("art", "artist", True), ("king", "kingdom", True), ("river", "river", True),
    ("planet", "plant", False), ("rock", "rocket", False), ("star", "start", False), ("war", "warsaw", False),
    ("india", "indiana", False), ("chemical", "chemistry", False), ("city", "citizen", False), ("in", "inn", False),
])
def test_same_stem_is_a_word_plus_a_common_ending_not_any_shared_beginning(a, b, same):
    """Joined names never repeat a stem ("Writers, novels and novelists"), but a shared beginning alone is no
    stem ("Planets and plants" may be joined)."""
    from knowledge_map.labels import same_stem

    assert same_stem(a, b) is same and same_stem(b, a) is same


def test_names_are_embedded_only_in_the_articles_space(tmp_path):
    """Another prompt, length or model than the articles' is refused in one line naming the field."""
    from knowledge_map.errors import KnowledgeMapError
    from knowledge_map.identity import same_space

    attrs = {"model": "m", "model_sha256": "", "prompt": "", "max_seq_length": 256}
    assert same_space(attrs, "e.h5", "m", "", 256)["model"] == "m"
    with pytest.raises(KnowledgeMapError, match="max_seq_length 256"):
        same_space(attrs, "e.h5", "m", "", 128)


def test_the_shortlist_and_coverage_defaults_are_the_schemas():
    """The code's default shortlist, general names and coverage and the config schema's are the same numbers."""
    from knowledge_map.config import validate_config
    from knowledge_map.labels import COVERAGE, GENERAL, JOIN_COVERAGE, SHORTLIST, WIDEN

    assert validate_config({})["labels"]["shortlist"] == SHORTLIST
    assert validate_config({})["labels"]["general"] == GENERAL
    assert validate_config({})["labels"]["coverage"] == COVERAGE
    assert validate_config({})["labels"]["widen"] == WIDEN
    assert validate_config({})["labels"]["join_coverage"] == JOIN_COVERAGE


def test_a_title_capitalised_after_its_first_word_is_a_name_and_a_mass_noun_title_stays_singular():
    """Titles are in sentence case: "Yellow Sea" is a name, written as titled; "Music" has no plural label."""
    from knowledge_map.labels import name_candidates, term_counts

    titles = ["Yellow Sea", "Sea", "Music", "Rock music", "Lake"]
    texts = ["The Yellow Sea is a sea of Asia. A yellow sea.", "A sea is a body of water; seas are large.",
             "Music is the art of sound.", "Rock music is a genre of music.", "A lake is a body of water; lakes."]
    counts, vocabulary = term_counts([f"{t} {x}" for t, x in zip(titles, texts)])
    candidates = name_candidates(titles, texts, counts, vocabulary)
    shown = dict(zip(candidates.keys, candidates.plain))
    assert shown[("yellow", "sea")] == "Yellow Sea" and candidates.named[candidates.keys.index(("yellow", "sea"))]
    assert shown[("music",)] == "music" and shown[("lake",)] == "lakes"


def test_a_title_its_own_article_writes_in_lower_case_twice_is_a_thing_not_a_name():
    """No first sentence writes "cholesterol" or "elam" in lower case; the Cholesterol article does, twice, so it
    names a thing (lower case mid-label), while Elam's one quoted transliteration leaves it a name."""
    from knowledge_map.labels import name_candidates, term_counts

    titles = ["Cholesterol", "Elam", "Lipid"]
    texts = ["Cholesterol is the principal sterol of animals. Most cholesterol is made in the liver; cholesterol moves.",
             "Elam was an ancient civilization. The name stems from the transliteration elam(a).",
             "A lipid is a molecule; lipids include fats."]
    counts, vocabulary = term_counts([f"{t} {x}" for t, x in zip(titles, texts)])
    candidates = name_candidates(titles, texts, counts, vocabulary)
    named = dict(zip(candidates.keys, candidates.named))
    shown = dict(zip(candidates.keys, candidates.plain))
    assert not named[("cholesterol",)] and shown[("cholesterol",)] == "cholesterol"
    assert named[("elam",)] and shown[("elam",)] == "Elam"


def test_joined_names_never_repeat_a_word():
    """"Stones and Stone Age" says "stone" twice: a name sharing a word with the chosen ones is not joined."""
    from knowledge_map.labels import shares_word

    keys = [("stone",), ("stone", "age"), ("period",), ("city", "in", "india"), ("river", "in", "china"),
            ("language",), ("indo-aryan", "languages")]
    candidates = SimpleNamespace(keys=keys)
    assert shares_word(candidates, [0], 1) and not shares_word(candidates, [0], 2)
    assert not shares_word(candidates, [3], 4)  # "in" and "of" are not words of a name
    assert shares_word(candidates, [5], 6) and shares_word(candidates, [6], 5)  # a named title's plural repeats


FISH = [
    ("Carp", "The carp is a fish of rivers and lakes."),
    ("Pike", "The pike is a fish of cold rivers."),
    ("Tuna", "The tuna is a fish of the open sea."),
    ("Cod", "The cod is a fish of the North Atlantic."),
    ("Trout", "The trout is a fish of clear streams."),
    ("Coelacanth", "The coelacanth is a lobe-finned fish of the deep sea."),
    ("Lungfish", "The lungfish is a lobe-finned fish that breathes air."),
]


def test_a_coarse_cell_mostly_of_one_kind_is_named_by_that_kind_not_a_small_distinctive_subgroup():
    """Most of the cell's articles are nearest "Fish"; "Lobe-finned fish" tells the cell from the birds better but
    covers two articles of seven, so the choice weighs contrast by the share of articles each name is nearest to."""
    records = FISH + BIRDS
    xy = np.array([[0.1 + 0.01 * i, 0.1] for i in range(len(FISH))] + [[0.6 + 0.01 * i, 0.1] for i in range(len(BIRDS))])
    # axes: animal, fish, lobe fins, bird, other names
    embeddings = l2_normalise(np.array([[1, 1, 0, 0, 0]] * 5 + [[1, 1, 1, 0, 0]] * 2 + [[1, 0, 0, 1, 0]] * len(BIRDS)))
    vectors = {"Fish": [1, 0.5, 0, 0, 0], "Lobe-finned fish": [0.3, 0.5, 1, 0, 0], "Birds": [1, 0, 0, 1, 0]}

    def embed(texts):
        return l2_normalise(np.array([vectors.get(t, [0, 0, 0, 0, 1]) for t in texts], dtype=float))

    def fish_label(coverage):
        levels = cell_labels([2], xy, embeddings, [x for _, x in records], [t for t, _ in records], [t for t, _ in records],
                             rules={"coverage": coverage}, embed=embed)
        return levels["levels"][0]["cells"][0]["label"]

    assert fish_label(0) == "Lobe-finned fish"  # contrast alone: the distinctive subgroup
    assert fish_label(1) == "Fish"
