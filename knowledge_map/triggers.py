"""What makes Snakemake recompute embedding shards: a digest of the embedding code.

Snakemake reruns a ``script:`` rule when its script changes, but it cannot
see the package code the script calls.  Embedding 250,000 articles costs GPU
hours, so the rule gets the digest of exactly the code that decides an
embedding as a ``param``: Snakemake's ``params`` trigger then reruns the
shards when that code changes, and never for anything else.  The labels
get the same for the labelling code (:func:`label_code_digest`), and every
later rule for the modules that decide its output (:data:`RULE_MODULES`).

The digest is over each module's syntax tree without docstrings, so
comments, formatting and documentation edits do not count as changes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os

from knowledge_map.io import sha256_file

#: Modules whose code decides the numbers in a shard file.
EMBEDDING_MODULES = ("knowledge_map.embed", "knowledge_map.models", "knowledge_map.backends", "knowledge_map.corpus",
                     "knowledge_map.quantize", "knowledge_map.engine_restart", "knowledge_map.tokens")
#: Modules whose code decides the cell labels and their measure (the rule's model runs embedding code too, but that
#: code re-embeds the articles and so relabels anyway).
LABEL_MODULES = ("knowledge_map.labels", "knowledge_map.phrases", "knowledge_map.label_quality", "knowledge_map.grid")


#: The package modules whose code decides each rule's output (beyond its own script, which Snakemake watches
#: itself): a change reruns that rule and what follows; only prepare_corpus's (corpus.py, an embedding module
#: anyway) reaches the embedding.
RULE_MODULES = {
    # The corpus rule: a new normalisation or check must redo corpus.parquet, or every shard would re-embed
    # (corpus is an embedding module) from the stale one.  Only corpus.py: a rebuilt corpus.parquet re-embeds
    # every shard, and textsafety.py's checks refuse what they refuse without changing an accepted corpus.
    "prepare_corpus": ("knowledge_map.corpus",),
    "merge_shards": ("knowledge_map.merge",),
    "umap_map": ("knowledge_map.mapping",),
    "place_questions": ("knowledge_map.placement", "knowledge_map.questions", "knowledge_map.textsafety",
                        "knowledge_map.similarity"),
    "knowledge_lists": ("knowledge_map.knowledge", "knowledge_map.similarity"),
    "calibrate_questions": ("knowledge_map.calibration", "knowledge_map.responses", "knowledge_map.questions",
                            "knowledge_map.textsafety"),
    "validate_knowledge": ("knowledge_map.validation", "knowledge_map.knowledge", "knowledge_map.calibration",
                           "knowledge_map.responses", "knowledge_map.questions", "knowledge_map.heatmap",
                           "knowledge_map.grid", "knowledge_map.textsafety"),
    "map_metrics": ("knowledge_map.metrics",),
    "map_figure": ("knowledge_map.figure", "knowledge_map.palette", "knowledge_map.sitedata"),  # colours, topic codes
    "site_data": ("knowledge_map.sitedata", "knowledge_map.textsafety"),
    "provenance": ("knowledge_map.provenance",),
}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_digest(source: str) -> str:
    """SHA-256 of Python ``source``'s syntax tree, ignoring comments, layout and docstrings."""
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def code_digest(paths: list[str | os.PathLike]) -> str:
    """One short digest over several Python files' :func:`source_digest` (order matters)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            digest.update(source_digest(handle.read()).encode())
    return digest.hexdigest()[:16]


def module_paths(modules: tuple[str, ...] = EMBEDDING_MODULES) -> list[str]:
    """Files of ``modules`` as Python imports them (the code that will run, wherever it is installed)."""
    return [importlib.util.find_spec(name).origin for name in modules]


def embedding_code_digest(script: str | os.PathLike) -> str:
    """Digest of the embedding modules and the rule's ``script``: the embed rule's ``code`` param."""
    return code_digest([*module_paths(), script])


def question_code_digest(script: str | os.PathLike) -> str:
    """Digest of the embedding modules, the questions module and ``script``: the embed_questions rule's ``code`` param.

    ``knowledge_map.questions`` decides the text a question is embedded as
    (:func:`knowledge_map.questions.question_text`), so it counts as embedding code there.
    """
    return code_digest([*module_paths((*EMBEDDING_MODULES, "knowledge_map.questions")), script])


def label_code_digest(script: str | os.PathLike) -> str:
    """Digest of the labelling modules and the rule's ``script``: the cell_labels rule's ``code`` param.

    Labels are cheap to redo and what a reader sees first: a new labelling
    rule relabels (and so re-measures and rebuilds the site data), while the
    embeddings and the map, which cost far more, stay.
    """
    return code_digest([*module_paths(LABEL_MODULES), script])


def rule_code_digest(rule: str, script: str | os.PathLike) -> str:
    """Digest of :data:`RULE_MODULES` ``[rule]`` and the rule's ``script``: that rule's ``code`` param."""
    return code_digest([*module_paths(RULE_MODULES[rule]), script])


def file_digest(path: str | os.PathLike) -> str:
    """Short SHA-256 of a file's bytes: a param standing for packaged data wherever it is installed."""
    return sha256_file(path)[:16]
