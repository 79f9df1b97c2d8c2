"""derain: a reproducible study of the SIAN single-image deraining network (arXiv 2006.05049).

Importing the package changes no process-wide state: the glibc allocator setting is an
explicit call, :func:`derain_lib.allocator.tune` (made by the CLI and the notebooks).
"""

__version__ = "0.1.0"
