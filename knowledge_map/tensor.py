"""Old name of :mod:`knowledge_map.cluster.cli`, kept for copies of ``profiles/tensor`` installed before the move.

Copies in ``~/.config/snakemake/tensor`` made earlier import ``knowledge_map.tensor``;
the profile in this repository calls :mod:`knowledge_map.cluster.cli`.
"""

import sys

from knowledge_map.cluster.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
