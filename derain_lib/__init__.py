"""derain: a reproducible study of the SIAN single-image deraining network (arXiv 2006.05049)."""

from .allocator import tune_allocator

__version__ = "0.1.0"

tune_allocator()  # glibc keeps freed tensors' memory for reuse; DERAIN_MALLOC_TUNING=0 opts out
