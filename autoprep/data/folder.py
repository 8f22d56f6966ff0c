"""Former home of index + decode, kept importable while other branches move to the new names.

Import from `autoprep.data.index` (listing files, headers) and `autoprep.data.decode` (decoding).
"""

from autoprep.data.decode import ImageFolder, decode_index, load_image, read_image_folder
from autoprep.data.index import (
    GRAY_MODES,
    IMAGE_EXTENSIONS,
    FileIndex,
    choose_channels,
    choose_image_size,
    index_directory,
    list_classes,
)

__all__ = [
    "GRAY_MODES", "IMAGE_EXTENSIONS", "FileIndex", "ImageFolder", "choose_channels",
    "choose_image_size", "decode_index", "index_directory", "list_classes", "load_image",
    "read_image_folder",
]
