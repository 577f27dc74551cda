import sys

from knowledge_map.cli import main

sys.exit(main())
