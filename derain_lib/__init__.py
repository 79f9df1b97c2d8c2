"""derain: a reproducible study of the SIAN single-image deraining network (arXiv 2006.05049).
Importing it changes no process-wide state (:func:`derain_lib.allocator.tune` is explicit)."""

__version__ = "0.1.0"
