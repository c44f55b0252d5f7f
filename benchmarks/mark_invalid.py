"""Mark result files invalid: their claims are withdrawn from the README until their benchmark re-runs.

Adds ``"invalid": REASON`` to each file, with ``invalid_problems`` (what ``common.validate_result``
finds wrong with it, computed here, never typed) and ``invalidated`` (this command, the date, the commit).
Every other field stays as the benchmark wrote it, so the old numbers remain readable for comparison.
A re-run of the benchmark replaces the whole file, mark included. Marking again replaces the mark.

    python benchmarks/mark_invalid.py --reason "measured before issue 11's fixes" benchmarks/results/x-h200.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

MARK_KEYS = ("invalid", "invalid_problems", "invalidated")


def mark(doc: dict, reason: str, command: str, git: str) -> dict:
    """``doc`` with the mark right after ``benchmark`` (so a reader sees it first); other keys unchanged."""
    if not reason.strip():
        raise SystemExit("--reason must say why the file is withdrawn")
    clean = {k: v for k, v in doc.items() if k not in MARK_KEYS}
    problems = common.validate_result(clean)
    out: dict = {}
    for key, value in clean.items():
        out[key] = value
        if key == "benchmark":
            out.update(invalid=reason.strip(), invalid_problems=problems,
                       invalidated={"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git})
    if "invalid" not in out:
        out = {"invalid": reason.strip(), "invalid_problems": problems,
               "invalidated": {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git}, **out}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reason", required=True, help="why the claims are withdrawn (one line, shown in the README)")
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args(argv)

    from neuralsight.io import atomic_write_json

    try:
        git = common.git_state(allow_dirty=True)["git"]
    except common.BenchmarkError:
        git = "unknown"
    command = common.command_line(argv)
    for path in args.files:
        doc = json.loads(path.read_text())
        marked = mark(doc, args.reason, command, git)
        atomic_write_json(path, marked)
        print(f"{path}: invalid ({len(marked['invalid_problems'])} problem(s) found)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
