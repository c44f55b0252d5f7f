"""Write the README's measured-results table from benchmarks/results/*.json (between two markers).

Only files that pass ``common.validate_result`` and carry no ``invalid`` mark give rows; each row is one
target: its measurement, the rule and whether it is met, the training time (budget and median training
seconds of the runs behind it), the hardware, the seeds and the commit. Files marked invalid are listed
below the table with the reason, without their numbers. A file that is neither valid nor marked invalid
stops the script (exit 1): mark it (``benchmarks/mark_invalid.py``) or re-run its benchmark.

    python benchmarks/readme_table.py            # rewrite README.md between the markers
    python benchmarks/readme_table.py --check    # exit 1 when README.md differs from what it would write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
README = common.ROOT / "README.md"


def _fmt(value) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _runs_behind(target: dict, by_id: dict) -> tuple[list[dict], list[dict]]:
    """(ours, peer) runs a target is computed from; peer is empty for a non-ratio target."""
    if "from" in target:
        return [by_id[i] for i in target["from"]["runs"]], []
    if "numerator" in target:
        return ([by_id[i] for i in target["numerator"]["runs"]], [by_id[i] for i in target["denominator"]["runs"]])
    return [], []


def _seconds(runs: list[dict]) -> str:
    budgets = sorted({r.get("budget_seconds") for r in runs if r.get("budget_seconds") is not None})
    trained = common.median([r["train_seconds"] for r in runs])
    budget = "/".join(f"{b:g} s" for b in budgets) + " budget, " if budgets else ""
    return f"{budget}{trained:.1f} s trained" if trained is not None else (budget.rstrip(", ") or "-")


def _seeds(runs: list[dict]) -> int:
    return len({(r["name"], r["seed"]) for r in runs})


def _hardware(doc: dict, tag: str) -> str:
    hw = doc["hardware"]
    name = hw.get("gpu") or hw.get("cpu")
    return f"{tag}: {name}, {hw['threads']} threads"


def rows(results: dict[Path, dict]) -> tuple[list[str], list[str]]:
    """Markdown table rows of every valid file and the lines of the withdrawn ones."""
    table, withdrawn = [], []
    for path, doc in results.items():
        if "invalid" in doc:
            withdrawn.append(f"- `{path.name}`: {doc['invalid']}")
            continue
        problems = common.validate_result(doc)
        if problems:
            raise SystemExit(f"{path}: not a valid result and not marked invalid:\n  " + "\n  ".join(problems) +
                             "\nre-run its benchmark, or mark it: python benchmarks/mark_invalid.py --reason ... FILE")
        tag = path.stem.removeprefix(f"{doc['benchmark']}-")
        by_id = {r["id"]: r for r in doc["runs"]}
        for t in doc["targets"]:
            ours, peer = _runs_behind(t, by_id)
            involved = ours + peer
            seeds = f"{_seeds(ours)} vs {_seeds(peer)}" if peer else (str(_seeds(ours)) if ours else
                                                                     _fmt(t.get("seeds", doc.get("seeds"))))
            time_text = _seconds(involved) if involved else (
                f"{t['budget_seconds']:g} s budget" if "budget_seconds" in t else "-")
            if t.get("equal_time"):
                time_text += f" (spread {t['equal_time']['spread']:.1%})"
            dirty = " (dirty tree)" if doc.get("git_dirty") else ""
            table.append(f"| {doc['benchmark']} | {t['name']} | {_fmt(t['measured'])} | {t['target']} | "
                         f"{_fmt(t['met'])} | {time_text} | {_hardware(doc, tag)} | {seeds} | "
                         f"`{doc['git'][:10]}`{dirty} |")
    return table, withdrawn


def render(results: dict[Path, dict]) -> str:
    """The text between the markers (markers included)."""
    table, withdrawn = rows(results)
    lines = [BEGIN, "<!-- written by benchmarks/readme_table.py from benchmarks/results/*.json; do not edit -->", ""]
    if table:
        lines += ["| benchmark | target | measured | rule | met | training time | hardware | seeds | commit |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *table]
    else:
        lines.append("No result file in `benchmarks/results/` is valid yet: the measurements are being re-run on "
                     "the fixed benchmark scripts (`python benchmarks/<name>.py --write`).")
    if withdrawn:
        lines += ["", "Withdrawn (marked invalid in the file, not quoted):", "", *withdrawn]
    lines += ["", END]
    return "\n".join(lines)


def update(text: str, block: str) -> str:
    """``text`` with the part from BEGIN to END replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"README must hold exactly one {BEGIN} ... {END} pair")
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block + text[stop:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when the README differs; change nothing")
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--results", type=Path, default=common.RESULTS)
    args = p.parse_args(argv)
    text = args.readme.read_text()
    new = update(text, render(common.load_results(args.results)))
    if args.check:
        if new != text:
            print(f"{args.readme} differs from the result files: run python benchmarks/readme_table.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        from neuralsight.io import atomic_write_text

        atomic_write_text(args.readme, new)
        print(f"wrote {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
