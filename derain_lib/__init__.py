"""derain: a reproducible study of the SIAN single-image deraining network (arXiv 2006.05049)."""

__version__ = "0.1.0"
