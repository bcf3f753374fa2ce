"""``python -m converter``: the same CLI as ``keras-weights``."""
from ._launch import entry

entry()
