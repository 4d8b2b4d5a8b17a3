"""How `tsvq prepare` scales with worker processes: records per second against workers, on the recipes' databases.

    .venv/bin/python -m benchmarks.scale            # rewrites results/scale-prepare.json

Each scenario prepares a recipe's store as written (`recipes/<db>/prepare.yaml`, the data in ../shared/data) with
1 and 2 workers into a temporary folder, timing the whole `prepare` call, and checks the stores are the same byte
for byte. The machine's cores bound what more workers can give.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from benchmarks.common import save
from tsvq.config import from_dict, load_yaml
from tsvq.data import PrepareConfig, prepare

SCENARIOS = {  # recipe, where its data is
    "ptbxl": ("recipes/ptbxl/prepare.yaml", "../shared/data/ptbxl"),
    "mitbih": ("recipes/mitbih/prepare.yaml", "../shared/data/mitdb"),
}
STORE_FILES = ("index.npz", "manifest.json", "normalization.json")  # and every shard of windows


def recipe_config(recipe: str, source: str) -> PrepareConfig:
    values = load_yaml(recipe)["data"]
    values["source"] = {**values["source"], "path": source} if isinstance(values["source"], dict) else source
    return from_dict(PrepareConfig, values, recipe)


def store_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("windows*.f32")) + [folder / name for name in STORE_FILES]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args()
    results = {}
    for name, (recipe, source) in SCENARIOS.items():
        config = recipe_config(recipe, source)
        runs = {}
        with tempfile.TemporaryDirectory() as tmp:
            for workers in args.workers:
                start = time.perf_counter()
                store = prepare(config, Path(tmp) / f"store-{workers}", progress=False, workers=workers)
                seconds = time.perf_counter() - start
                records = len({r["file"] for r in store.manifest["records"]}) + len(store.manifest["skipped_records"])
                runs[str(workers)] = {
                    "seconds": seconds,
                    "records": records,
                    "records_per_s": records / seconds,
                    "windows": int(store.num_windows),
                    "store_sha256": store_digest(store.path),
                }
                print(
                    f"{name}: {workers} worker(s) {records} records in {seconds:.1f} s ({records / seconds:.1f} "
                    "records/s)",
                    flush=True,
                )
        first = runs[str(args.workers[0])]
        results[name] = {
            "recipe": recipe,
            "runs": runs,
            "same_store": len({r["store_sha256"] for r in runs.values()}) == 1,
            "speedup": {w: first["seconds"] / r["seconds"] for w, r in runs.items()},
        }
    save("scale-prepare", {"scenarios": results})


if __name__ == "__main__":
    main()
