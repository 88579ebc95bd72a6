"""``python -m gpuaug.bench``."""

import sys

from gpuaug.bench.cli import main

sys.exit(main())
