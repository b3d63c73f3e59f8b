"""``python -m mindtf fetch NAME``: download and verify a dataset (see :mod:`mindtf.data.fetch`)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional


# "%(default).0s" renders as nothing: it stops ArgumentDefaultsHelpFormatter from appending
# "(default: None)" to options whose help already says what the default is
_NO_DEFAULT = "%(default).0s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mindtf.cli.common import add_limit_arguments

    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="dataset(s) to fetch; see --list" + _NO_DEFAULT)
    parser.add_argument("--list", action="store_true", help="list the datasets and exit")
    parser.add_argument("--mirror", default=None, metavar="DIR_OR_URL[,...]",
                        help="mirror(s) tried before the official sources: local folders or base "
                             "URLs, comma separated (default: $MINDTF_DATA_MIRROR)" + _NO_DEFAULT)
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="where verified files are kept (default: $MINDTF_DATA_DIR, the "
                             "checkout's data/ folder, or ~/.cache/mindtf)" + _NO_DEFAULT)
    parser.add_argument("--offline", action="store_true",
                        help="never use the network: local mirrors and files already present only")
    parser.add_argument("--insecure", action="store_true",
                        help="DANGER: skip TLS certificate checks (sha256 is still checked)")
    parser.add_argument("--cafile", default=None, metavar="PEM",
                        help="trust this CA bundle for HTTPS (e.g. an institution's proxy CA)"
                             + _NO_DEFAULT)
    parser.add_argument("--recheck", action="store_true",
                        help="re-hash files already present instead of trusting their marker")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars or progress lines (MINDTF_PROGRESS=plain|bar|off "
                             "chooses their kind)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="read timeout of a download (connect timeout: 10 s)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries of a source after a transient failure")
    add_limit_arguments(parser)
    parser.add_argument("--registry", default=None, metavar="FILE.json",
                        help="another dataset registry instead of the packaged one (default: "
                             "mindtf/data/registry.json)" + _NO_DEFAULT)


def _list(registry: Optional[str]) -> int:
    from mindtf.data import data_dir, load_registry

    root = data_dir()
    datasets = load_registry(registry)
    width = max(len(n) for n in datasets)
    for name, ds in sorted(datasets.items()):
        present = sum((root / name / f.name).is_file() for f in ds.files)
        state = "present" if present == len(ds.files) else f"{present}/{len(ds.files)} files"
        print(f"{name:<{width}}  {ds.total_size / 1e6:6.1f} MB  {state:<11}  {ds.description}")
    print(f"data folder: {root}")
    return 0


def run(args: argparse.Namespace) -> int:
    from mindtf.cli.common import fetch_kwargs
    from mindtf.data import fetch
    from mindtf.errors import DataError

    if args.list:
        return _list(args.registry)
    if not args.names:
        raise DataError("name a dataset to fetch (see 'python -m mindtf fetch --list')")
    for name in args.names:
        result = fetch(name, **fetch_kwargs(args),
                       insecure=args.insecure, cafile=args.cafile, recheck=args.recheck,
                       progress=not args.no_progress, timeout=(10.0, args.timeout),
                       retries=args.retries, registry=args.registry)
        for attempt in result.attempts:
            if not attempt.missing:
                print(f"  (failed: {attempt.file} from {attempt.source}: {attempt.error})",
                      file=sys.stderr)
        print(f"{name}: {len(result.files)} file(s) verified in {result.directory}")
        for f in result.files.values():
            print(f"  {f.name:<14} {f.size:>10} bytes  {f.method:<18} {f.source}")
    return 0
