"""``python -m converter``: the same CLI as ``keras-weights``."""
import sys

from ._launch import main

sys.exit(main())
