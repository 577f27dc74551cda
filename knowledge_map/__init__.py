"""knowledge-map: Wikipedia articles -> embeddings -> a 2-D knowledge map.

The workflow (Snakefile, rules/) calls into this package; every idea lives in
one module here so it can be unit-tested without Snakemake:

- ``corpus``     load, validate and normalise article corpora, shard slicing
- ``questions``  load and validate quiz questions
- ``models``     resolve model names, prompts, dtypes and devices
- ``embed``      embed a slice of the corpus into a shard file
- ``backends``   the engines behind ``embed``: PyTorch, OpenVINO on CPUs
- ``triggers``   the digest of the embedding code that decides re-embedding
- ``merge``      stream shard files into one matrix, refusing inconsistencies
- ``mapping``    UMAP projection and normalisation to the unit square
- ``placement``  put questions on the map next to the articles they test
- ``labels``     class-based TF-IDF labels for grid cells
- ``grid``       the one grid convention (cell centre = (g + 0.5) / n)
- ``metrics``    map fidelity: trustworthiness, topic kNN, question hit@k
- ``provenance`` versions, checksums, config hashes
- ``sitedata``   the static site's data files
- ``heatmap``    the knowledge estimate from quiz answers (same formula as site/js/heatmap.js)
- ``palette``    topic colours shared by the map figure and the site (site/js/render.js)
- ``io``         JSON, file digests and atomic writes, one implementation each
- ``corpus_check`` summarise a corpus and list every problem (``knowledge-map inspect``)
- ``cluster/``   the SSH GPU dispatcher of the tensor profile, GPU slots, run progress
- ``devtools/``  helpers for tests, benchmarks and docs (site server, synthetic data, timing)
"""

__version__ = "0.1.0"
