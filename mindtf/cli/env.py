"""``python -m mindtf env``: versions, device and thread settings, and fixes for known problems."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from mindtf.runtime import env_report

    rows, problems = env_report()
    if getattr(args, "json", False):
        import json

        print(json.dumps({"info": dict(rows), "warnings": problems}, indent=2))
    else:
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        for msg in problems:
            print(f"WARNING: {msg}")
    return 0
