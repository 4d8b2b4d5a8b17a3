"""Answer an evaluation question of ``benchmarks.questions``: run its tsvq commands (train, assemble, eval) in order,
then condense the last evaluation's report into ``results/<name>.json``.

    python -m benchmarks.eval_summary mitbih-conditional-cpu            # trains, evaluates, writes the file
    python -m benchmarks.eval_summary mitbih-conditional-cpu --no-run   # only condenses the report already there

Each command resumes what an earlier run left (training checkpoints; `tsvq eval` needs `--overwrite` to replace its
report, so a finished evaluation is read, not redone, with ``--no-run``).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from benchmarks.common import save
from benchmarks.questions import BY_NAME
from tsvq.io import read_json


def report_folder(commands: tuple[str, ...]) -> Path:
    """The ``--out`` of the last ``tsvq eval`` among the commands."""
    for command in reversed(commands):
        words = shlex.split(command)
        if words[:2] == ["tsvq", "eval"] and "--out" in words:
            return Path(words[words.index("--out") + 1])
    raise SystemExit("the question runs no `tsvq eval --out DIR`")


def condense(report: dict) -> dict:
    """The figures a reader compares (mean, spread and seeds of each generator), without the per-window detail."""
    generation = report["generation"]
    condensed = {
        "eval_seconds": report.get("seconds"),
        "generation": {
            name: {"figures": scored["figures"], "memorisation_ratio": scored["memorisation_ratio"]}
            for name, scored in generation["generators"].items()
        },
        "informative": generation.get("informative"),
    }
    for section in ("label_classification", "per_class"):
        if section in report:
            condensed[section] = report[section]
    return condensed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(name for name, q in BY_NAME.items() if q.runs))
    parser.add_argument("--no-run", action="store_true", help="condense the report already written")
    args = parser.parse_args()
    question = BY_NAME[args.name]
    if not args.no_run:
        for command in question.runs:
            print(f"$ {command}", flush=True)
            subprocess.run(shlex.split(command), check=True)
    folder = report_folder(question.runs)
    report = read_json(folder / "report.json", "evaluation report")
    payload = {"what": question.what, "commands": list(question.runs)} | condense(report)
    print(f"-> {save(question.name, payload)}")


if __name__ == "__main__":
    sys.exit(main())
