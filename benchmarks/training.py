"""Time the instructor's training cells and measure what they reach.

For 08_training (``train_model``) and 09_autoencoders (``train_autoencoder``) this
runs the source notebook's code cells up to and including the training cell (test
cells and, through ``NBGRADER_EXECUTION``, slow demonstrations skipped), as the
grader's kernel would, and prints for each: the MNIST source, the CPU and wall time
of the training cell, and the held-out accuracy or reconstruction MSE, next to the
budget and bands the notebooks state. It runs on the offline split and, when
``COURSE_DATA_DIR`` holds the full MNIST (or ``--full DIR`` names such a folder), on
the full dataset too. Each run is a fresh process. Nothing here is run by CI.

usage: python benchmarks/training.py [--full DIR] [--only 08_training|09_autoencoders]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELLS = {"08_training": ("training.ipynb", "train_model"), "09_autoencoders": ("autoencoders.ipynb", "train_autoencoder")}


def run_one(assignment: str) -> dict:
    """In this process: run the notebook up to its training cell and measure it."""
    import time

    import nbformat

    from course import data
    from course.checks import training

    notebook, cell_id = CELLS[assignment]
    nb = nbformat.read(ROOT / "source" / assignment / notebook, as_version=4)
    namespace = {"__name__": "__main__"}
    result = {"assignment": assignment}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
            continue  # markdown and test cells
        code = compile(cell.source, meta.get("grade_id", "cell"), "exec")
        if meta.get("grade_id") != cell_id:
            exec(code, namespace)
            continue
        cpu, wall = time.process_time(), time.perf_counter()
        exec(code, namespace)
        result["cpu_s"], result["wall_s"] = time.process_time() - cpu, time.perf_counter() - wall
        break
    source = data.mnist_source()
    result["source"] = f"{source.kind} ({source.train_size:,} training / {source.heldout_size:,} held-out)"
    if assignment == "08_training":
        result["metric"], result["value"] = "accuracy", training.heldout_accuracy(namespace["model"])
        result["bands"] = f">= {training.ACCURACY_BANDS[0]:.0%} (3 points), >= {training.ACCURACY_BANDS[1]:.0%} (5)"
    else:
        result["metric"], result["value"] = "MSE", training.heldout_mse(namespace["autoencoder"])
        result["bands"] = f"<= {training.MSE_BANDS[0]} (3 points), <= {training.MSE_BANDS[1]} (5)"
    result["budget_s"] = training.BUDGET_CPU_SECONDS
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", help="a folder with MNIST/raw/ (torchvision's layout); default $COURSE_DATA_DIR")
    parser.add_argument("--only", choices=sorted(CELLS), action="append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(run_one(args.child)), flush=True)
        return 0

    full = args.full or os.environ.get("COURSE_DATA_DIR")
    sources = [("offline", None)]
    if full and any((Path(full) / "MNIST" / "raw" / f).exists()
                    for f in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")):
        sources.append(("full", full))
    else:
        print("full MNIST: not found (set COURSE_DATA_DIR or pass --full DIR); offline split only")
    rows = []
    for label, folder in sources:
        env = {k: v for k, v in os.environ.items() if k != "COURSE_DATA_DIR"}
        env["NBGRADER_EXECUTION"] = "1"
        env["COURSE_DOWNLOAD"] = "0"
        if folder:
            env["COURSE_DATA_DIR"] = folder
        for assignment in args.only or sorted(CELLS):
            print(f"running {assignment} on the {label} MNIST ...", flush=True)
            done = subprocess.run([sys.executable, __file__, "--child", assignment], env=env, cwd=ROOT,
                                  capture_output=True, text=True)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode or not lines:
                print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
                return 1
            rows.append(json.loads(lines[-1][7:]))
    print()
    header = f"{'cell':<34} {'MNIST source':<42} {'CPU s':>6} {'wall s':>7} {'budget':>7}  result  bands"
    print(header)
    print("-" * len(header))
    for r in rows:
        cell = f"{r['assignment']}/{CELLS[r['assignment']][1]}"
        value = f"{r['value']:.2%}" if r["metric"] == "accuracy" else f"{r['value']:.4f}"
        print(f"{cell:<34} {r['source']:<42} {r['cpu_s']:>6.1f} {r['wall_s']:>7.1f} {r['budget_s']:>6.0f}s  "
              f"{r['metric']} {value}  {r['bands']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
