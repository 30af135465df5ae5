# Type stub of the compiled module _kernels.pyx (the Python-visible part).

DEBUG_BUILD: bool
