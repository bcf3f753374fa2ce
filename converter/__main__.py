"""``python -m converter``: the same CLI as ``keras-weights``."""
import sys

from .cli import main

sys.exit(main())
