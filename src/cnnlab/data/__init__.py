"""Fashion-MNIST: the IDX reader, the files and their checksums, where they live, download, splits.

NumPy and the standard library only, pooch to download, and ``cnnlab.runs.layout`` to write
atomically. The modules, lowest first: ``idx`` (the file format), ``files`` (names, sizes,
checksums), ``download`` and ``location`` (finding or fetching the files), ``verified`` (checksums
on every load, recorded once a file passed), ``arrays`` (reading, splitting and normalising them),
``images`` (any photo turned into a Fashion-MNIST-style 28x28 image).
"""

from cnnlab.data.arrays import Arrays, FashionMNIST, Split, load_arrays, load_split, normalize, split_indices
from cnnlab.data.files import (
    BACKGROUND,
    CLASS_NAMES,
    DEBIAN_DIR,
    ENV_VAR,
    FILES,
    MEAN,
    NUM_CLASSES,
    PIXEL_MAX,
    STD,
    TEST_TOTAL,
    TRAIN_TOTAL,
    DataFile,
    md5_of,
    verify_file,
)
from cnnlab.data.idx import read_idx
from cnnlab.data.location import ensure_data, has_all_files, locate, recorded_or_search, user_cache_dir

__all__ = [
    "Arrays",
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "DataFile",
    "ENV_VAR",
    "FILES",
    "FashionMNIST",
    "BACKGROUND",
    "MEAN",
    "NUM_CLASSES",
    "PIXEL_MAX",
    "STD",
    "Split",
    "TEST_TOTAL",
    "TRAIN_TOTAL",
    "ensure_data",
    "has_all_files",
    "load_arrays",
    "load_split",
    "locate",
    "recorded_or_search",
    "md5_of",
    "normalize",
    "read_idx",
    "split_indices",
    "user_cache_dir",
    "verify_file",
]
