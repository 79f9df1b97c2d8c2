"""Data: image I/O, benchmark data sets, training patches, rain synthesis, the catalog.

Submodules are imported on use (``from derain_lib.data.datasets import open_dataset``) so
that reading one image does not import torch or scipy.
"""

from .io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    ImageScanError,
    check_images,
    image_size,
    list_images,
    read_image,
    read_image_uint8,
    scan_images,
    write_png,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "ImageScanError",
    "check_images",
    "image_size",
    "list_images",
    "read_image",
    "read_image_uint8",
    "scan_images",
    "write_png",
]
