"""Generated C code that runs the exported weights (``export -f c --c-inference``): the model's graph
(``graph``), the shapes of every tensor (``shapes``), and the C text (``codegen``)."""
