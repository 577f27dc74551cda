"""Label grid cells of the map with short names for what their articles are.

Each level cuts the unit square into ``n x n`` cells (see :mod:`knowledge_map.grid`).

**Keywords** of a cell are its top class-based TF-IDF terms (c-TF-IDF, as in
BERTopic: all articles of a cell form one document, the "class"):

    w(t, c) = tf(t, c) / |c| * log(1 + A / f(t))

where tf(t, c) counts term t in cell c, |c| is the number of terms in c,
A is the mean number of terms per non-empty cell and f(t) the count of t in
all cells.  Keywords are accurate but are not names ("american, known, french").

**Labels** are names a person would write ("Countries", "Chemical elements"),
chosen from candidates that come from the articles' own text and titles only:

- the head noun of each article's defining phrase ("Mali is a landlocked
  country in West Africa" -> "country"), the head with the word before it
  ("landlocked country") and with the place after it when the corpus has an
  article of that name ("country in West Africa"); see :mod:`knowledge_map.phrases`;
- titles of at most three words: of concept articles (each word also written
  in lower case in some first sentence or twice in the article itself, see
  :func:`knowledge_map.phrases.writes_lower`, so "Electronic music",
  "Volcano" -> "Volcanoes" and "Cholesterol" qualify and "Poland" does not) and of named ones ("Joseon"), written as titled.
  A concept title may be a mass noun: it takes its plural only when at least
  ``PLURAL_RATIO`` as many articles write the plural as the singular
  ("Music", "Philosophy", but "Volcanoes"; see :func:`used_plurals`).  A
  phrase's head takes its plural when the corpus writes it, unless the corpus
  shows a mass noun: its own article opens with the bare word ("Music is")
  and most phrases it heads lack "a"/"an" ("the music of Brazil"), and its
  plural is rare (see :func:`mass_nouns`).

A candidate k *supports* an article a with

    s(a, k) = 1/2 [a is defined by k] + 1/2 [a mentions every word of k]

(defined by: k is a's head, modifier + head, or a's own concept title;
mentions: the words occur in a's title or text, the last word in singular or
plural; at the cell level the share of articles that mention every word is
approximated by the smallest share over the words).  Its coverage of a cell
is the mean of s over the cell's articles, and its score the coverage of the
cell minus its coverage of the 8 neighbouring cells:

    score(k, c) = cov(k, c) - cov(k, N(c))

so a name wins when it covers the cell's articles *and* tells them apart from
the surrounding ones.  cov(k, N(c)) is the coverage in the neighbour where it
is largest: a reader must tell the cell from each neighbour, not from their
average.  Only candidates that define at least one article of
the cell compete.  Then, in that order:

- specificity: a two-word candidate replaces its head when it scores at least
  ``specific_ratio`` of the head's score ("Chemical elements" over "Elements");
- more kinds: the best names of other heads are joined to it while they
  score at least ``join_ratio`` of the best and the label stays within four
  words ("Rivers and lakes", "Stars, galaxies and planets"), so a label
  covers more of a mixed cell; a name that repeats a word of those already
  chosen is not joined ("Stones and Stone Age");
- nesting and variety (all levels but the coarsest): a candidate equal to the
  label of the enclosing coarser cell, or already used by an adjacent cell of
  the same level, has its coverage of the cell multiplied by ``repeat_penalty``
  before the neighbours' is subtracted, so fine labels name parts of the
  coarse region rather than repeat it.  Cells are labelled largest first.

**Choosing with the embedding model** (when :func:`cell_labels` gets
``embed``, as the workflow's rule does, with the model that embedded the
articles).  Each cell's *shortlist* is its ``shortlist`` best candidates by
the score above (after the nesting and variety factor; titles of named
articles left out: they name one instance, not a kind), the cell's top-3
c-TF-IDF keywords that are also one-word candidates (a general kind such as
"music" or "bird" that a coarse cell's mixed articles share, or a named
article the cell's text is mostly about, "Joseon"), its ``general`` kinds
that define the most of its articles, however common next door ("Species",
"Kings"; see :func:`most_defined`), and the text rules' own label.  Every
shortlisted name is embedded once (all levels share one cache).  With
``e(k)`` a name's unit embedding and ``m_d`` the unit mean embedding of the
articles of cell ``d``:

    contrast(k, c) = e(k) . m_c - max_{d in N(c)} e(k) . m_d

(``N(c)``: the non-empty neighbours; a cell with none is contrasted with the
mean of all cells).  Contrast alone favours a distinctive subgroup over the
kind most articles are ("Lobe-finned fish" over a cell of every fish), so
each option also has a *share*: the fraction of the cell's articles (an
evenly spread sample of at most ``COVERAGE_SAMPLE``) to which it is the most
similar of the cell's options.  The label is the option of highest

    contrast(k, c) * share(k, c) ** coverage

among those of positive contrast (``coverage`` 0: contrast alone; ties and
cells where no option has a positive contrast go to the highest contrast);
then names
of other kinds from the shortlist are joined while that raises the joined
label's ``contrast * share ** join_coverage`` with its contrast positive
(its vector taken as the normalised sum of its names'; its share, the
fraction of the sampled articles whose most similar single option is one of
its names) and it stays within four words: "Galaxies" over a cell of
galaxies and countries gains "and countries" when the share it adds is
worth the contrast it costs.  At levels of at most ``VERIFY_CELLS``
cells a joined label is embedded as written, and one that points at a
neighbour is cut back (:func:`verify_joins`).  A cell whose label still
points at a neighbour (contrast <= 0: every shortlisted name is as close to
the cell next door, "Countries", "Cities" and "Capitals" beside more
countries and cities) chooses again the same way among its ``widen`` kinds
that define the most of its articles ("Countries in Eastern Europe"), and
keeps the new label only if its contrast is higher (:func:`rescue_misses`).
The text rules decide *which* names are
candidates; the model only decides among a few of them.  This is the
criterion :mod:`knowledge_map.label_quality` measures, so that measure now
grades the labeller's own choice: ``benchmarks/label_reference.py`` judges
against human-written descriptions instead.

A cell of one article is named by its title (the region *is* that article).
A cell where no candidate applies (no defining phrase found, e.g. text in
another language, or no usable words at all) takes the title of its most
central article (the one whose embedding is closest, by cosine, to the cell's
mean embedding) of at most four words, else its top keyword.  Without
``embed`` the text rules alone choose.  Labels are at most four words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from knowledge_map.grid import cell_center, cell_index
from knowledge_map.label_quality import cell_means
from knowledge_map.phrases import (
    defining_parts,
    display_noun,
    first_sentence,
    head_and_modifier,
    is_noun,
    lower_words,
    plural,
    sentence_case,
    singular,
    writes_lower,
)

MAX_LABEL_WORDS = 4
# A plural shows in labels when at least this share as many articles use it as its singular (see used_plurals).
PLURAL_RATIO = 0.1
# Candidates per cell, best by the text rules, that the embedding chooses among (see rerank_names).
SHORTLIST = 3
# Kinds per cell that define the most of its articles, added to its shortlist (see most_defined).
GENERAL = 2
# The exponent of the share of a cell's articles a name is the nearest option to, in the model's choice
# (see rerank_names): 0 chooses by contrast alone, 1 by contrast x share.
COVERAGE = 2.0
# Levels of at most this many cells embed each joined label as written and undo a join that misses (verify_joins).
VERIFY_CELLS = 100
# Kinds per cell, those defining the most of its articles, the model chooses among again when the label it chose
# points at a neighbour (see rescue_misses).
WIDEN = 24
# The exponent of the share of a cell's articles nearest to one of a joined label's names, in the choice to join
# another name (see rerank_names): 0 joins by contrast alone.
JOIN_COVERAGE = 0.5
# Articles per cell, evenly spread, from which those shares are counted (bounds the work in large cells).
COVERAGE_SAMPLE = 256
# The labels.* config settings that are naming rules (cell_labels' ``rules``); the others say what to write.
RULE_KEYS = ("specific_ratio", "join_ratio", "repeat_penalty", "shortlist", "general", "coverage", "join_coverage", "widen")
# Words that name nothing: English stop words and heads too general to tell regions apart.
STOP = frozenset(ENGLISH_STOP_WORDS) | frozenset(
    "use thing way aspect feature point example instance item idea work individual object concept entity subject".split()
)


def term_counts(documents: list[str], max_features: int = 50000):
    """Sparse article x term counts and the vocabulary (English stop words removed, words of 3+ letters).

    Texts with no usable word at all (digits, punctuation) give an empty
    vocabulary: then the matrix has no columns instead of raising.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[^\W\d_]{3,}\b",
        max_features=max_features,
        min_df=1,
        dtype=np.float64,
    )
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError:  # "empty vocabulary; perhaps the documents only contain stop words"
        return sp.csr_matrix((len(documents), 0), dtype=np.float64), np.array([], dtype=object)
    return counts.tocsr(), np.asarray(vectorizer.get_feature_names_out(), dtype=object)


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
    if len(values) > count:  # keep the top ``count`` and every tie with the last of them, then sort those
        keep = values >= np.partition(values, len(values) - count)[len(values) - count]
        values, columns = values[keep], columns[keep]
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


@dataclass
class Candidates:
    """Every name candidate of a corpus and which articles it defines and mentions.

    ``keys[j]`` is a tuple of lower-case words, the last one singular;
    ``plain[j]`` how a label writes it mid-phrase ("chemical elements"),
    ``text[j]`` at the start of a label ("Chemical elements"); ``head[j]`` the index of the one-word
    candidate of its last word (itself for one-word candidates, -1 if none);
    ``defines`` is articles x candidates (1 where the candidate defines the
    article); ``mentions`` articles x words (1 where the article mentions the
    word, singular or plural); ``words[j]`` the word columns of candidate j,
    padded with -1; ``named[j]`` is True for the title of a named article
    ("Joseon", "Charles Darwin"), which names an instance, not a kind.
    """

    keys: list[tuple[str, ...]]
    plain: list[str]
    text: list[str]
    head: np.ndarray
    defines: sp.csr_matrix
    mentions: sp.csr_matrix
    words: np.ndarray
    named: np.ndarray


def name_candidates(titles: list[str], texts: list[str], counts: sp.csr_matrix, vocabulary: np.ndarray) -> Candidates:
    """Defining-phrase heads, modifier + head pairs and concept titles, with their support (module docstring)."""
    vocab = frozenset(vocabulary.tolist())  # hashable: the phrase rules cache their noun tests per word
    index: dict[tuple[str, ...], int] = {}
    surface: dict[tuple[str, ...], Counter] = {}
    rows: list[int] = []
    cols: list[int] = []

    def add(key: tuple[str, ...], shown: str, row: int) -> None:
        j = index.setdefault(key, len(index))
        if shown:  # one-word heads are written from their key; only leading words keep a surface form
            surface.setdefault(key, Counter())[shown] += 1
        rows.append(row)
        cols.append(j)

    fixed: dict[tuple[str, ...], str] = {}  # candidates written as they are, not pluralised
    titled: dict[tuple[str, ...], str] = {}
    kinds: set[tuple[str, ...]] = set()
    title_set = set(titles)
    title_words = {t.lower() for t in titles if " " not in t}
    sentences = [first_sentence(text) for text in texts]
    lower_seen = lower_words(sentences)
    indefinite: Counter = Counter()  # per head: defining phrases led by "a"/"an", and all of them
    defining: Counter = Counter()
    for row, sentence in enumerate(sentences):
        words, prep, place, led_by_a = defining_parts(sentence, vocab)
        head, modifier = head_and_modifier(words, vocab)
        if head is None or len(head) < 3 or head not in lower_seen or head in STOP:
            continue  # a head only ever capitalised is a name or a demonym ("American"), not a kind
        if not (is_noun(head, vocab) or head in title_words):
            continue  # no plural and no article of that name: likely an adjective ("widespread")
        add((head,), "", row)
        indefinite[head] += led_by_a
        defining[head] += 1
        kinds.add((head,))
        named = words[-1][:1].isupper()  # "the Black Sea", "Grand Prince": a name, not a kind with a modifier
        if modifier and not named and len(modifier) >= 3 and modifier.replace("-", "").isalpha() \
                and modifier.lower() not in STOP:
            add((modifier.lower(), head), modifier, row)
            kinds.add((modifier.lower(), head))
        if place and place in title_set and head not in place.lower():  # a place with an article, not "of Roman"
            add((head, prep, place.lower()), place, row)
            kinds.add((head, prep, place.lower()))
    for row, title in enumerate(titles):
        words = title.split()
        if not 1 <= len(words) <= 3 or not all(w.replace("-", "").isalpha() for w in words):
            continue
        lower = [w.lower() for w in words]
        # Titles are in sentence case: a capital after the first word marks a name ("Yellow Sea", "Ivory Coast").
        concept = all(w in lower_seen or writes_lower(w, texts[row]) for w in lower) \
            and not any(w[:1].isupper() for w in words[1:])
        if concept and not (len(words) == 3 and lower[1] in ("in", "of")):
            key = (*lower[:-1], singular(lower[-1], vocab))  # a concept: "Volcano" names "Volcanoes"
            add(key, " ".join(lower[:-1]), row)  # written in lower case mid-label: "particle physics"
            if len(lower) > 1:
                titled[key] = " ".join(lower)  # "probability theory" stays singular unless a phrase defines the kind
        else:
            key = tuple(lower)
            fixed[key] = title  # a name ("Joseon") or a phrase ("Philosophy of mind") is written as its title
            add(key, title, row)
    fixed.update({key: text for key, text in titled.items() if key not in kinds})
    keys = sorted(index, key=index.get)
    defines = sp.csr_matrix(
        (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(len(texts), len(keys)),
    )
    defines.data[:] = 1.0  # an article defines a candidate once, however many ways
    # A phrase's head is countable, plural whenever the corpus writes it, unless the corpus shows it is a mass
    # noun ("the music of Brazil": see mass_nouns).  A concept title ("Music", "Geometry") may be a mass noun
    # too: plural only when the corpus writes its plural often enough.
    shown_plurals = used_plurals(counts, vocabulary)
    countable = vocab - ({plural(w) for w in mass_nouns(titles, sentences, indefinite, defining)} - shown_plurals)
    plain = [fixed.get(key) or _display(key, surface.get(key, Counter()), countable if key in kinds else shown_plurals)
             for key in keys]
    words, mentions = _mention_matrix(keys, counts, vocabulary)
    head = np.array([index.get((head_word(key),), -1) for key in keys], dtype=np.int64)
    named = np.array([key in fixed and key not in titled for key in keys], dtype=bool)
    return Candidates(keys, plain, [sentence_case(p) for p in plain], head, defines.tocsr(), mentions, words, named)


def used_plurals(counts: sp.csr_matrix, vocabulary: np.ndarray, ratio: float = PLURAL_RATIO) -> frozenset[str]:
    """Plurals a label may use: those written by at least ``ratio`` as many articles as their singular.

    A mass noun's plural is rare ("musics" in 1 article against "music" in
    257, "philosophies" 19 against 192), a countable noun's common
    ("countries" 253 against 545, "theories" 66 against 276), so
    "Music" and "Philosophy" stay singular while "Countries" does not.
    """
    documents = np.bincount(counts.indices, minlength=len(vocabulary))
    position = {w: i for i, w in enumerate(vocabulary.tolist())}
    return frozenset(
        form for w, i in position.items()
        if (form := plural(w)) != w and form in position and documents[position[form]] >= ratio * documents[i]
    )


def mass_nouns(titles: list[str], sentences: list[str], indefinite: Counter, defining: Counter) -> set[str]:
    """Heads the corpus shows to be mass nouns, to be written in the singular ("Music", not "Musics").

    Two signs together: the corpus's own article on the word opens with the
    bare word ("Music is the arrangement of sound", against "A city is" or
    "The Moon is"), and fewer than half the defining phrases the word heads
    follow "a"/"an" ("a genre of music", "the music of Brazil": 0 of 12;
    "a language" 65 of 89, though "Language is a structured system").  The
    caller also keeps the plural of a word whose plural the corpus writes
    often (:func:`used_plurals`: "arts").  A head with no article of its own
    keeps its plural: persons and roles are countable although one article
    names one of them ("politicians" is written in 4 articles, "politician"
    in 143), and "the capital of" never takes "a".
    """
    mass = set()
    for title, sentence in zip(titles, sentences):
        word = title.lower()
        if word in defining and indefinite[word] < 0.5 * defining[word] and sentence.lstrip().startswith(title + " "):
            mass.add(word)
    return mass


def head_word(key: tuple[str, ...]) -> str:
    """The kind a candidate names: the last word, or the first of "city in india"."""
    return key[0] if len(key) == 3 and key[1] in ("in", "of") else key[-1]


def _display(key: tuple[str, ...], shown: Counter, vocab: Collection[str]) -> str:
    """A candidate as written mid-phrase: surface casing of the leading words, the last one plural when countable."""
    if len(key) == 3 and key[1] in ("in", "of"):
        place = shown.most_common(1)[0][0] if shown else key[2]
        return f"{display_noun(key[0], vocab)} {key[1]} {place}"
    last = display_noun(key[-1], vocab)
    if len(key) == 1:
        return last
    lead = shown.most_common(1)[0][0] if shown else ""
    if lead.lower() != " ".join(key[:-1]):
        lead = " ".join(key[:-1])
    return f"{lead} {last}"


def _mention_matrix(keys, counts: sp.csr_matrix, vocabulary: np.ndarray):
    """Articles x candidate-words binary mentions (singular and plural merged) and each candidate's word columns."""
    position = {w: i for i, w in enumerate(vocabulary.tolist())}
    word_index: dict[str, int] = {}  # words the vocabulary lacks (stop words such as "in") are not tested
    src, dst = [], []
    for key in keys:
        for w in key:
            if w in position or plural(w) in position:
                word_index.setdefault(w, len(word_index))
    for w, j in word_index.items():
        for form in {w, plural(w)}:
            if form in position:
                src.append(position[form])
                dst.append(j)
    merge = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(len(vocabulary), len(word_index)))
    mentions = (counts @ merge).tocsr()
    mentions.data[:] = 1.0
    width = max((len(k) for k in keys), default=1)
    words = np.full((len(keys), width), -1, dtype=np.int64)
    for j, key in enumerate(keys):
        words[j, : len(key)] = [word_index.get(w, -1) for w in key]
    return words, mentions


def coverage(define: np.ndarray, mention: np.ndarray, words: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Mean support of candidates over the articles of some cells (module docstring), cells x candidates.

    ``define[r, i]``: how many articles of cell r candidate i defines;
    ``mention[r, w]``: how many mention word column w; ``words[i]`` the word
    columns of candidate i (-1 for a word not tested); ``sizes[r]`` the
    cells' article counts.  The share mentioning all of a candidate's words
    is approximated by the smallest share.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    padded = np.concatenate([mention, sizes[:, None]], axis=1)  # column -1: mentioned by every article
    mentioned = padded[:, words].min(axis=2)
    safe = np.where(sizes > 0, sizes, 1.0)[:, None]
    return 0.5 * (define + mentioned) / safe


def neighbour_matrix(n: int) -> sp.csr_matrix:
    """Cells x cells: 1 where two cells of an ``n x n`` grid touch (8-neighbourhood, not the cell itself)."""
    gy, gx = np.divmod(np.arange(n * n), n)
    rows, cols = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx == dy == 0:
                continue
            ok = (gx + dx >= 0) & (gx + dx < n) & (gy + dy >= 0) & (gy + dy < n)
            rows.append(np.flatnonzero(ok))
            cols.append(((gy + dy) * n + gx + dx)[ok])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n * n, n * n))


def choose_names(
    n: int,
    cell: np.ndarray,
    candidates: Candidates,
    parent_labels: dict[int, int] | None = None,
    specific_ratio: float = 0.9,
    join_ratio: float = 0.5,
    repeat_penalty: float = 0.5,
    shortlist: int = 0,
    general: int = 0,
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Candidate indices naming each non-empty cell of an ``n x n`` level (rules in the module docstring).

    Also returns each cell's ``shortlist`` best-scoring candidates (all with a
    positive score when fewer), best first, then its ``general`` kinds that
    define the most of its articles (:func:`most_defined`), for :func:`rerank_names`.

    ``cell`` is each article's cell index; ``parent_labels`` maps a cell to
    the head candidate of the coarser cell around it (for nesting).  The
    neighbours' coverage is that of the neighbour it is largest in, so a name
    must tell the cell apart from each neighbour, as a reader has to.  A
    cell with no candidate is left out of the result.
    """
    cells = n * n
    membership = sp.csr_matrix((np.ones(len(cell)), (cell, np.arange(len(cell)))), shape=(cells, len(cell)))
    sizes = np.asarray(membership.sum(axis=1)).ravel()
    adjacency = neighbour_matrix(n)
    define_cell = (membership @ candidates.defines).tocsr()
    mention_cell = (membership @ candidates.mentions).tocsr()
    define_all = np.asarray(candidates.defines.sum(axis=0)).ravel()
    mention_all = np.asarray(candidates.mentions.sum(axis=0)).ravel()
    define_slot = np.full(define_cell.shape[1], -1, dtype=np.int64)
    mention_slot = np.full(mention_cell.shape[1], -1, dtype=np.int64)

    chosen: dict[int, list[int]] = {}
    shortlists: dict[int, list[int]] = {}
    for c in np.lexsort((np.arange(cells), -sizes)):
        if sizes[c] == 0:
            break
        ids = define_cell.indices[define_cell.indptr[c] : define_cell.indptr[c + 1]]
        if not len(ids):
            continue
        touching = adjacency.indices[adjacency.indptr[c] : adjacency.indptr[c + 1]]
        near = touching[sizes[touching] > 0]
        columns, words = np.unique(candidates.words[ids], return_inverse=True)
        words = words.reshape(len(ids), -1)
        if columns[0] == -1:  # untested words point at the padding column
            columns, words = columns[1:], np.where(words == 0, -1, words - 1)
        rows = np.concatenate([[c], near])
        define, mention = gather(define_cell, rows, ids, define_slot), gather(mention_cell, rows, columns, mention_slot)
        row_sizes = sizes[rows]
        if not len(near):  # an isolated cell: contrast with the whole map
            define = np.vstack([define, define_all[ids]])
            mention = np.vstack([mention, mention_all[columns]])
            row_sizes = np.append(row_sizes, len(cell))
        cov = coverage(define, mention, words, row_sizes)
        used = {chosen[d][0] for d in touching if d in chosen}
        if parent_labels is not None and c in parent_labels:
            used.add(parent_labels[c])
        heads = candidates.head[ids]
        repeated = np.array([j in used or (heads[i] in used and len(candidates.keys[j]) == 1) for i, j in enumerate(ids)])
        score = np.where(repeated, repeat_penalty, 1.0) * cov[0] - cov[1:].max(axis=0)
        chosen[int(c)] = _pick(ids, score, heads, candidates, specific_ratio, join_ratio)
        if shortlist:
            order = np.lexsort((ids, -score))
            order = order[~candidates.named[ids[order]]]  # kinds only: a named title wins by the text rules alone
            shortlists[int(c)] = [int(ids[i]) for i in order[:shortlist]]
            shortlists[int(c)] += [j for j in most_defined(ids, define[0], candidates, general) if j not in shortlists[int(c)]]
    return chosen, shortlists


def most_defined(ids: np.ndarray, defined: np.ndarray, candidates: Candidates, count: int) -> list[int]:
    """The ``count`` kinds that define the most of a cell's articles (``defined[i]``: how many ``ids[i]`` defines).

    What many of a coarse cell's articles *are* ("Species", "Kings") scores
    low by contrast when the neighbours hold the same kind, so the text rules
    may leave it off the shortlist; the model weighs it against the
    distinctive names.  Named titles are left out, as on the shortlist.
    """
    order = [i for i in np.lexsort((ids, -defined)) if not candidates.named[ids[i]]]
    return [int(ids[i]) for i in order[:count]]


def gather(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """``matrix[rows][:, columns]`` as a dense array, without scipy's fancy indexing (called once per cell).

    ``slot`` is a scratch array of -1, one entry per column of ``matrix``; it
    is left as it was found.
    """
    out = np.zeros((len(rows), len(columns)))
    slot[columns] = np.arange(len(columns))
    for i, row in enumerate(rows):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        where = slot[matrix.indices[start:stop]]
        keep = where >= 0
        out[i, where[keep]] = matrix.data[start:stop][keep]
    slot[columns] = -1
    return out


def _pick(ids, score, heads, candidates: Candidates, specific_ratio: float, join_ratio: float) -> list[int]:
    """The best candidate, made more specific, then joined with a second kind (module docstring)."""
    order = np.lexsort((ids, -score))
    best = order[0]
    for i in order[1:]:  # specificity: a longer name with the same head that scores nearly as well
        if heads[i] == ids[best] and len(candidates.keys[ids[i]]) > 1 and score[i] >= specific_ratio * score[best]:
            best = i
            break
    names = [int(ids[best])]
    kinds = {heads[best]}
    length = len(candidates.text[ids[best]].split())
    for i in order:  # more names of other kinds while they score well enough and the label stays short
        if score[i] <= 0 or score[i] < join_ratio * score[best] or len(names) == 3:
            break
        if ids[i] in names or (heads[i] >= 0 and heads[i] in kinds) or shares_word(candidates, names, ids[i]):
            continue
        words = len(candidates.text[ids[i]].split())
        if length + words + 1 <= MAX_LABEL_WORDS:  # "+ 1": the "and"
            names.append(int(ids[i]))
            kinds.add(heads[i])
            length += words
    return names


def rerank_names(
    n: int,
    shortlists: dict[int, list[int]],
    picks: dict[int, list[int]],
    candidates: Candidates,
    means: np.ndarray,
    sizes: np.ndarray,
    vectors: dict[int, np.ndarray],
    articles=None,
    power: float = 0.0,
    join_power: float = 0.0,
) -> dict[int, list[int]]:
    """Names chosen by embedding: each cell's shortlisted candidate that best tells its articles from its neighbours'.

    ``means`` are the cells' unit mean article embeddings, ``vectors`` the
    candidates' unit embeddings (same model).  A name's contrast is
    ``v . m_c - max_{d in N(c)} v . m_d``.  With ``articles`` (a cell -> its
    articles' embeddings, or a sample of them) the first name is the option of
    highest ``contrast * share ** power`` among those of positive contrast,
    ``share`` the fraction of those articles it is the most similar option to,
    so a name must point at the cell *and* at most of its articles; without it
    (or ``power`` 0) the highest contrast.  That name is joined with
    other kinds from the shortlist while that raises the joined label's
    ``contrast * share ** join_power`` and its contrast stays positive, and the
    label stays within four words.  A joined label's contrast is that of the
    normalised sum of its names' vectors; its share, the fraction of the
    sampled articles whose most similar single option is one of its names (so
    "Galaxies and countries" covers a cell of both).  With ``join_power`` 0 (or
    without ``articles``) a name joins while it raises the contrast alone.  The
    text rules' pick competes too.
    """
    adjacency = neighbour_matrix(n)
    overall = means[sizes > 0].mean(axis=0)
    out: dict[int, list[int]] = {}
    for c, ids in shortlists.items():
        others = neighbour_means(adjacency, means, sizes, overall, c)

        def contrasts(sums: np.ndarray, own=means[c], others=others) -> np.ndarray:
            """Contrast of labels given as rows of summed unit name vectors (normalised here, as :func:`joined`)."""
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            unit = sums / np.where(norms > 0, norms, 1.0)
            return unit @ own - (unit @ others.T).max(axis=1)

        options = [[j] for j in ids]
        if c in picks:
            options.append(picks[c])
        sums = np.array([np.sum([vectors[j] for j in o], axis=0) for o in options], dtype=np.float64)
        scores = contrasts(sums)
        pick = int(np.argmax(scores))
        if articles is not None and (scores > 0).any():
            shares = nearest_shares(articles(c), [joined([vectors[j] for j in o]) for o in options])
            # contrast x share^power among the names that tell the cell apart; ties go to the higher contrast
            weighted = np.where(scores > 0, scores * shares**power, -np.inf)
            pick = int(np.lexsort((np.arange(len(options)), -scores, -weighted))[0])
        best, best_sum, score = options[pick], sums[pick], float(scores[pick])
        share_of: dict[int, float] | None = None
        if articles is not None and join_power:  # each single name's share of the articles it is the nearest to
            singles = sorted({j for o in options for j in o})
            share_of = dict(zip(singles, nearest_shares(articles(c), [vectors[j] for j in singles])))
            score = score * sum(share_of[j] for j in best) ** join_power if score > 0 else -np.inf
        while len(best) < 3:
            kinds = {candidates.head[j] for j in best}
            words = sum(len(candidates.text[j].split()) for j in best)
            tries = [j for j in ids if j not in best and candidates.head[j] not in kinds
                     and not shares_word(candidates, best, j)
                     and words + len(candidates.text[j].split()) + 1 <= MAX_LABEL_WORDS]
            if not tries:
                break
            joined_sums = best_sum + np.array([vectors[j] for j in tries], dtype=np.float64)
            gains = contrasts(joined_sums)
            if share_of is not None:  # contrast x share^join_power, the share of a join the sum of its names'
                shares = sum(share_of[j] for j in best) + np.array([share_of[j] for j in tries])
                gains = np.where(gains > 0, gains * shares**join_power, -np.inf)
            k = int(np.argmax(gains))
            if gains[k] <= score:
                break
            best, best_sum, score = [*best, tries[k]], joined_sums[k], float(gains[k])
        out[c] = best
    return out


def neighbour_means(adjacency: sp.csr_matrix, means: np.ndarray, sizes: np.ndarray, overall: np.ndarray,
                    c: int) -> np.ndarray:
    """The mean vectors of cell ``c``'s non-empty neighbours, or ``overall`` (one row) for a cell with none."""
    touching = adjacency.indices[adjacency.indptr[c] : adjacency.indptr[c + 1]]
    near = touching[sizes[touching] > 0]
    return means[near] if len(near) else overall[None, :]


def verify_joins(n: int, names: dict[int, list[int]], candidates: Candidates, means: np.ndarray, sizes: np.ndarray,
                 vectors: dict[int, np.ndarray], embed, written: dict[str, np.ndarray] | None = None) -> dict[int, list[int]]:
    """Joined labels that, embedded as written, point at a neighbour, cut to their prefix of highest contrast.

    :func:`rerank_names` judges a join by the normalised sum of its names'
    vectors, since embedding every combination would cost too much; the
    label as written embeds differently and can point at a neighbour
    ("People, languages and acts").  ``written`` (label text -> unit
    vector) is a cache shared with :func:`rescue_misses`, filled here.  Only such a miss is undone: a
    shorter prefix often has a higher contrast too, but names fewer of the
    cell's kinds ("Physicists" for physicists, mathematicians and
    philosophers).  Embedding the written labels (one to two per joined
    cell) is cheap where cells are few (:data:`VERIFY_CELLS`).
    """
    adjacency = neighbour_matrix(n)
    overall = means[sizes > 0].mean(axis=0)
    joined_cells = sorted(c for c, ids in names.items() if len(ids) > 1)
    written = {} if written is None else written
    texts = sorted({name_text(names[c][:k], candidates) for c in joined_cells for k in range(2, len(names[c]) + 1)}
                   - written.keys())
    written.update(zip(texts, embed(texts)) if texts else ())
    out = dict(names)
    for c in joined_cells:
        options = [names[c][:k] for k in range(1, len(names[c]) + 1)]
        others = neighbour_means(adjacency, means, sizes, overall, c)
        scores = [name_contrast(label_parts(o, candidates, vectors, written), means[c], others) for o in options]
        if scores[-1] <= 0:  # the label as written points at a neighbour: keep the prefix that points home best
            out[c] = options[int(np.argmax(scores))]
    return out


def rescue_misses(n: int, names: dict[int, list[int]], shortlists: dict[int, list[int]], cell_defines: sp.csr_matrix,
                  candidates: Candidates, means: np.ndarray, sizes: np.ndarray, vectors: dict[int, np.ndarray], embed,
                  articles=None, power: float = 0.0, join_power: float = 0.0, widen: int = WIDEN,
                  written: dict[str, np.ndarray] | None = None) -> dict[int, list[int]]:
    """Cells whose label points at a neighbour choose again among the ``widen`` kinds that define most of their articles.

    The shortlist holds the text rules' few best names, which score by
    words shared with the neighbours; in a cell whose neighbours hold the
    same kinds ("Countries", "Cities", "Capitals" beside more countries and
    cities) every shortlisted name can point next door, while a rarer kind
    of the cell does not ("Countries in Eastern Europe", defining 4 of 117
    articles).  Only such misses are chosen again, by :func:`rerank_names`
    over the shortlist, the ``widen`` most-defining kinds and the current
    label; a cell keeps its label unless the new one points home (a positive
    contrast): one miss is never traded for another.  A joined label's
    contrast is that of its text as written at levels of at most
    :data:`VERIFY_CELLS` cells (embedded once, ``written`` being the cache
    :func:`verify_joins` filled), else of its names' normalised sum, as the
    rest of the choice does.  Names without a vector yet are embedded.
    """
    adjacency = neighbour_matrix(n)
    overall = means[sizes > 0].mean(axis=0)
    written = {} if written is None else written
    missing = sorted({j for ids in names.values() for j in ids} - vectors.keys())
    vectors.update(zip(missing, embed([candidates.text[j] for j in missing])) if missing else ())

    def contrasts(chosen: dict[int, list[int]]) -> dict[int, float]:
        if n * n <= VERIFY_CELLS:
            texts = sorted({name_text(ids, candidates) for ids in chosen.values() if len(ids) > 1} - written.keys())
            written.update(zip(texts, embed(texts)) if texts else ())
        out = {}
        for c, ids in chosen.items():
            parts = label_parts(ids, candidates, vectors, written)
            out[c] = name_contrast(parts, means[c], neighbour_means(adjacency, means, sizes, overall, c))
        return out

    before = contrasts(names)
    missed = sorted(c for c, score in before.items() if score <= 0)
    if not missed:
        return names
    wider = {}
    for c in missed:
        start, stop = cell_defines.indptr[c], cell_defines.indptr[c + 1]
        kinds = most_defined(cell_defines.indices[start:stop], cell_defines.data[start:stop], candidates, widen)
        wider[c] = [*shortlists.get(c, []), *(j for j in kinds if j not in shortlists.get(c, []))]
    wanted = sorted({j for ids in wider.values() for j in ids} - vectors.keys())
    vectors.update(zip(wanted, embed([candidates.text[j] for j in wanted])) if wanted else ())
    again = rerank_names(n, wider, {c: names[c] for c in missed}, candidates, means, sizes, vectors, articles, power,
                         join_power)
    if n * n <= VERIFY_CELLS:
        again = verify_joins(n, again, candidates, means, sizes, vectors, embed, written)
    after = contrasts(again)
    return {c: again[c] if c in after and after[c] > 0 else ids for c, ids in names.items()}


def label_parts(ids: list[int], candidates: Candidates, vectors: dict[int, np.ndarray],
                written: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The vectors a label's contrast is taken from: its text as written when embedded (``written``), else its names'."""
    text = name_text(ids, candidates) if len(ids) > 1 else None
    return [written[text]] if text in written else [vectors[j] for j in ids]


def shares_word(candidates: Candidates, names: list[int], j: int) -> bool:
    """Does candidate ``j`` repeat a word of the chosen ``names``?  "Stones and Stone Age" says "stone" twice.

    A named title keeps its words as written, so a plural counts as its
    singular's repeat ("Languages and Indo-Aryan languages"), and so does
    another word of the same stem (:func:`same_stem`: "Novels and novelists",
    "German politicians and Germany").
    """
    words = {w for k in names for w in candidates.keys[k]} - {"of", "in"}
    forms = words | {plural(w) for w in words}
    return any(w in forms or plural(w) in forms or any(same_stem(w, v) for v in words) for w in candidates.keys[j])


# Endings that make another word of the same stem: novel-ist, german-y, mesopotamia-n, arab-ic, king-dom.
STEM_ENDINGS = ("n", "an", "ian", "y", "ist", "ists", "ism", "ic", "ics", "al", "dom", "er", "ers", "ing", "ship")


def same_stem(a: str, b: str) -> bool:
    """Are two words one stem in two forms?  Equal, or the longer is the shorter (3+ letters) plus a common
    ending (:data:`STEM_ENDINGS`): "novel"/"novelist", "german"/"germany", "mesopotamia"/"mesopotamian",
    "art"/"artist", "king"/"kingdom"; not "planet"/"plant", "rock"/"rocket", "star"/"start",
    "war"/"warsaw", "india"/"indiana" or "chemical"/"chemistry"."""
    short, long = sorted((a, b), key=len)
    return a == b or (len(short) >= 3 and long.startswith(short) and long[len(short):] in STEM_ENDINGS)


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """The vector of a label joining ``parts``: their normalised sum (unit vectors in)."""
    v = np.sum(parts, axis=0)
    return v / (np.linalg.norm(v) or 1.0)


def name_contrast(parts: list[np.ndarray], own: np.ndarray, others: np.ndarray) -> float:
    """``v . own - max_d v . others_d`` for the label joining ``parts``, v their normalised sum (unit vectors in)."""
    v = joined(parts)
    return float(v @ own - (others @ v).max())


def nearest_shares(articles: np.ndarray, options: list[np.ndarray]) -> np.ndarray:
    """The share of ``articles`` to which each option is the most similar one (cosine; ties to the first)."""
    nearest = np.argmax(np.asarray(articles, dtype=np.float32) @ np.array(options, dtype=np.float32).T, axis=1)
    return np.bincount(nearest, minlength=len(options)) / max(len(articles), 1)


def name_text(names: list[int], candidates: Candidates) -> str:
    """The label of chosen names: "Rivers", "Rivers and lakes", "Stars, galaxies and planets"."""
    first = candidates.text[names[0]]
    rest = [candidates.plain[j] for j in names[1:]]
    if not rest:
        return first
    return ", ".join([first, *rest[:-1]]) + " and " + rest[-1]


def label_level(
    n: int,
    xy: np.ndarray,
    embeddings: np.ndarray,
    counts: sp.csr_matrix,
    vocabulary: np.ndarray,
    ids: list[str],
    titles: list[str],
    candidates: Candidates,
    parent: dict[str, Any] | None = None,
    n_keywords: int = 5,
    n_top: int = 5,
    rules: dict[str, float] | None = None,
    embed=None,
    vectors: dict[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every cell of an ``n x n`` grid: position, label, keywords, count and top articles.

    ``x, y`` is the mean map position of the cell's articles (where a label
    is drawn: on the articles, not on the empty part of the cell).
    """
    gx, gy = cell_index(xy[:, 0], n), cell_index(xy[:, 1], n)
    cell = gy * n + gx
    membership = sp.csr_matrix((np.ones(len(cell)), (cell, np.arange(len(cell)))), shape=(n * n, len(cell)))
    weights = class_tfidf(membership @ counts)
    sizes = np.bincount(cell, minlength=n * n)
    mass = np.stack([np.bincount(cell, xy[:, k].astype(np.float64), minlength=n * n) for k in (0, 1)], axis=1)
    parent_labels = _parent_heads(n, parent, candidates) if parent else None
    rules = {"shortlist": SHORTLIST, "general": GENERAL, **(rules or {})}
    power = rules.pop("coverage", COVERAGE)
    join_power = rules.pop("join_coverage", JOIN_COVERAGE)
    widen = rules.pop("widen", WIDEN)
    if embed is None:
        rules["shortlist"] = 0
    names, shortlists = choose_names(n, cell, candidates, parent_labels, **rules)
    order = np.argsort(cell, kind="stable")
    starts = np.searchsorted(cell[order], np.arange(n * n + 1))
    if embed is not None:
        _add_keyword_names(shortlists, weights, vocabulary, candidates)
        wanted = sorted({j for ids in [*shortlists.values(), *names.values()] for j in ids} - vectors.keys())
        vectors.update(zip(wanted, embed([candidates.text[j] for j in wanted])))

        def articles(c: int) -> np.ndarray:  # a fixed, evenly spread sample of the cell's article embeddings
            members = order[starts[c] : starts[c + 1]]
            if len(members) > COVERAGE_SAMPLE:
                members = members[np.linspace(0, len(members) - 1, COVERAGE_SAMPLE).astype(np.int64)]
            return embeddings[members]

        means = cell_means(xy, embeddings, n)[0]
        names = rerank_names(n, shortlists, names, candidates, means, sizes, vectors, articles if power or join_power else None,
                             power, join_power)
        written: dict[str, np.ndarray] = {}  # joined labels embedded as written, at levels of few cells
        if n * n <= VERIFY_CELLS:
            names = verify_joins(n, names, candidates, means, sizes, vectors, embed, written)
        if widen:
            names = rescue_misses(n, names, shortlists, (membership @ candidates.defines).tocsr(), candidates, means,
                                  sizes, vectors, embed, articles if power or join_power else None, power, join_power, widen,
                                  written)
    cells = []
    for c in range(n * n):
        members = order[starts[c] : starts[c + 1]]
        top = central_members(members, embeddings, n_top) if len(members) else []
        if len(members) == 1 and len(titles[members[0]].split()) <= MAX_LABEL_WORDS:
            label = titles[members[0]]  # a region of one article is that article
        elif c in names:
            label = name_text(names[c], candidates)
        else:
            label = fallback_label(top, titles, weights, vocabulary, c)
        cells.append(
            {
                "gx": c % n,
                "gy": c // n,
                "center_x": float(cell_center(c % n, n)),
                "center_y": float(cell_center(c // n, n)),
                "x": round(float(mass[c, 0] / sizes[c]), 5) if sizes[c] else None,
                "y": round(float(mass[c, 1] / sizes[c]), 5) if sizes[c] else None,
                "article_count": int(len(members)),
                "label": label,
                "names": [head_word(candidates.keys[j]) for j in names.get(c, [])],
                "keywords": top_terms(weights, vocabulary, c, n_keywords) if len(members) else [],
                "top_articles": [{"row": r, "id": ids[r], "title": titles[r]} for r in top],
                "empty": not len(members),
            }
        )
    return {"n": n, "cells": cells}


def fallback_label(top: list[int], titles: list[str], weights: sp.csr_matrix, vocabulary: np.ndarray,
                   c: int) -> str | None:
    """A cell no candidate names: its most central article's title of at most four words, else its top keyword.

    Such cells hold text the phrase rules cannot read (another language, no
    words at all); a title is still a name a person would recognise.
    """
    if not top:
        return None
    for row in top:
        if len(titles[row].split()) <= MAX_LABEL_WORDS:
            return titles[row]
    keywords = top_terms(weights, vocabulary, c, 1)
    return sentence_case(keywords[0]) if keywords else " ".join(titles[top[0]].split()[:MAX_LABEL_WORDS])


def _add_keyword_names(shortlists, weights, vocabulary, candidates: Candidates, count: int = 3) -> None:
    """Add each cell's top c-TF-IDF keywords that are one-word candidates to its shortlist.

    A kind some article defines ("bird"), or the title of a named article
    ("Joseon") when it is among the words the cell's text is most made of:
    then the region is about that one thing, as the keywords say.
    """
    lookup = {key[0]: j for j, key in enumerate(candidates.keys) if len(key) == 1}
    vocab = frozenset(vocabulary.tolist())
    for c, ids in shortlists.items():
        for word in top_terms(weights, vocabulary, c, count):
            j = lookup.get(singular(word, vocab))
            if j is not None and j not in ids:
                ids.append(j)


def _parent_heads(n: int, parent: dict[str, Any], candidates: Candidates) -> dict[int, int]:
    """Each cell of an ``n x n`` level -> the head candidate of the label of the coarser cell holding its centre."""
    lookup = {key: j for j, key in enumerate(candidates.keys) if len(key) == 1}
    m = parent["n"]
    heads = {}
    for c in range(n * n):
        px = int(cell_index(cell_center(c % n, n), m))
        py = int(cell_index(cell_center(c // n, n), m))
        names = parent["cells"][py * m + px].get("names") or []
        if names and (names[0],) in lookup:
            heads[c] = lookup[(names[0],)]
    return heads


def cell_labels(
    levels: list[int],
    xy: np.ndarray,
    embeddings: np.ndarray,
    texts: list[str],
    ids: list[str],
    titles: list[str],
    n_keywords: int = 5,
    n_top: int = 5,
    rules: dict[str, float] | None = None,
    embed=None,
) -> dict[str, Any]:
    """Labels for every level, coarsest first, with the grid convention spelled out.

    ``rules`` holds the naming rules' settings (``specific_ratio``,
    ``join_ratio``, ``repeat_penalty``, ``shortlist``, ``general``, see :func:`choose_names`;
    ``coverage``, see :func:`rerank_names`).
    ``embed`` (optional, default None) maps a list of names to unit vectors
    with the model that embedded ``embeddings``; with it the model chooses
    among each cell's shortlisted names (module docstring), without it the
    text rules alone choose.
    """
    from knowledge_map.corpus import document_text

    counts, vocabulary = term_counts([document_text(t, x) for t, x in zip(titles, texts)])
    candidates = name_candidates(titles, texts, counts, vocabulary)
    out = []
    parent = None
    vectors: dict[int, np.ndarray] = {}
    for n in sorted(levels):
        level = label_level(n, xy, embeddings, counts, vocabulary, ids, titles, candidates, parent, n_keywords, n_top, rules,
                            embed, vectors)
        out.append(level)
        parent = level
    return {
        "convention": "cell (gx, gy) of an n x n grid spans [gx/n, (gx+1)/n) x [gy/n, (gy+1)/n); centre = ((gx+0.5)/n, (gy+0.5)/n)",
        "levels": out,
    }
