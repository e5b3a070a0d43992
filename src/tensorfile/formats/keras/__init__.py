"""Keras: HDF5 files (Keras 2 full models and weights, Keras 3 `.weights.h5`) and `.keras` zips.

detect recognises the HDF5 files and zips, sharded the `*.weights.json` index of sharded weights;
inspector reads HDF5 weights through h5_weights and zips through keras_zip, and training_state
splits what they find into model weights and the checkpoint's optimizer and metric state.
hdf5_basics and model_config hold what detection and inspection share.
"""

from __future__ import annotations

from .detect import detect_file, detect_hdf5, detect_keras_zip
from .h5_weights import _h5_payload
from .hdf5_basics import _REMOTE_CANDIDATES, HDF5_MAGIC, hdf5_offset, superblock_offset
from .inspector import INSPECTS, inspect_h5
from .keras_zip import inspect_keras_zip
from .sharded import SHARD_INDEX_SUFFIX, detect_dir, detect_sharded_index, inspect_sharded

__all__ = [
    "HDF5_MAGIC",
    "INSPECTS",
    "SHARD_INDEX_SUFFIX",
    "_REMOTE_CANDIDATES",
    "_h5_payload",
    "detect_dir",
    "detect_file",
    "detect_hdf5",
    "detect_keras_zip",
    "detect_sharded_index",
    "hdf5_offset",
    "inspect_h5",
    "inspect_keras_zip",
    "inspect_sharded",
    "superblock_offset",
]
