"""``python -m knowledge_map.cluster``: the tensor profile's submit, status and cancel commands."""

import sys

from knowledge_map.cluster.cli import main

sys.exit(main())
