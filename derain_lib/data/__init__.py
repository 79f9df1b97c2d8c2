"""Data: image I/O, benchmark data sets, training patches, rain synthesis, the catalog,
downloads. Submodules are imported on use, so that reading one image does not import torch."""
