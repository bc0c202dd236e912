"""The dataset layer: what a dataset is, where its files are, how they are fetched, checked and read.

NumPy and the standard library only (Pillow for image folders, scikit-learn for its digits, pooch
to download). The modules, lowest first: ``dataset`` (the ``Dataset`` object and the images in
memory), ``idx`` and ``files`` (the IDX format, files and their checksums), ``location``,
``download`` and ``verified`` (finding, fetching and checking files), the sources (``idx_datasets``:
Fashion-MNIST, MNIST, KMNIST; ``cifar``: CIFAR-10; ``digits``: scikit-learn's digits; ``folder``:
a folder of one's own images), ``conform`` (one size and colour mode), ``registry`` (the datasets by
name, opened and read), ``arrays`` (seeded splits) and ``images`` (any photo turned into a model's
input).
"""

from cnnlab.data.arrays import Arrays, Split, split_arrays, split_indices
from cnnlab.data.dataset import Dataset, LabelledImages, channel_statistics
from cnnlab.data.files import DataFile, md5_of, verify_file
from cnnlab.data.idx import read_idx
from cnnlab.data.idx_datasets import FASHION_MNIST
from cnnlab.data.location import ENV_VAR, user_cache_dir
from cnnlab.data.registry import BUILT_IN, DEFAULT, get_source, list_datasets, load_dataset, open_dataset

# Fashion-MNIST's files and class names, for scripts written before the dataset layer (cnnlab's
# own code takes them from the run's dataset).
FILES = FASHION_MNIST.files
CLASS_NAMES = FASHION_MNIST.dataset.classes

__all__ = [
    "Arrays",
    "BUILT_IN",
    "CLASS_NAMES",
    "DEFAULT",
    "DataFile",
    "Dataset",
    "ENV_VAR",
    "FASHION_MNIST",
    "FILES",
    "LabelledImages",
    "Split",
    "channel_statistics",
    "get_source",
    "list_datasets",
    "load_dataset",
    "md5_of",
    "open_dataset",
    "read_idx",
    "split_arrays",
    "split_indices",
    "user_cache_dir",
    "verify_file",
]
