"""Datasets for the course: fetching (mirrors, resume, sha256 checks) and loaders.

Pure Python: importing this package imports neither MindSpore nor anything that touches the
network.

>>> from mindtf.data import fetch, load_multi30k
>>> result = fetch("multi30k")           # or: python -m mindtf fetch multi30k
>>> result.sources                       # which mirror/URL served each file
>>> pairs = load_multi30k("train")       # [(de, en), ...]

Files are kept in :func:`data_dir` (``$MINDTF_DATA_DIR``, the checkout's ``data/``, or a user
cache folder); mirrors come from ``$MINDTF_DATA_MIRROR`` (comma-separated folders or URLs).
Each source is held to a deadline, a minimum progress and a byte limit, and archives to size caps
(:mod:`mindtf.data.limits`); any failure of a source moves on to the next one
(:mod:`mindtf.data.failures`).
"""
from __future__ import annotations

from mindtf.data.archive import UnsafeArchiveError, extract_member, list_members, safe_extract
from mindtf.data.datasets import load_multi30k, load_sst2, load_tinyshakespeare
from mindtf.data.fetch import (Attempt, FetchedFile, FetchResult, InsecureDownloadWarning, fetch,
                               make_ssl_context)
from mindtf.data.paths import data_dir, mirrors, user_cache_dir
from mindtf.data.registry import (DatasetSpec, FileSpec, Source, dataset_info, list_datasets,
                                  load_registry)

__all__ = [
    "fetch", "FetchResult", "FetchedFile", "Attempt", "InsecureDownloadWarning",
    "make_ssl_context", "list_datasets", "dataset_info", "load_registry", "data_dir", "mirrors",
    "user_cache_dir", "DatasetSpec", "FileSpec", "Source",
    "load_multi30k", "load_tinyshakespeare", "load_sst2",
    "safe_extract", "extract_member", "list_members", "UnsafeArchiveError",
]
