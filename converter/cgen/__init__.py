"""C code generation: the forward pass that runs the exported weights (``export -f c --c-inference``): the model's
graph (``graph``), each layer kind's shape and C calls (``layers``, one module per family), the C functions they
call (``kernels``) and the program (``codegen``)."""
