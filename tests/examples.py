"""The bundled example submissions in examples/<student>/<assignment>/ (what `course demo` grades).

    python tests/examples.py [ASSIGNMENT ...]    # rewrite them from release/ and tests/solutions/

Three students per assignment, made from the released notebook:

- ada: every exercise answered correctly (the alternative solutions), written answers too;
- ben: a partial submission with typical mistakes: of the exercises in order, the
  first of every three is right, the second has a plausible mistake (a mutant), the
  third is left unanswered;
- cy: the untouched release.

examples/expected_scores.csv holds what the autograder must give each (manually
graded answers count 0 until an instructor grades them); a test grades the
committed files and compares.
"""

from __future__ import annotations

import csv
import sys

import nbformat

from course.assignments import resolve
from course.notebooks import fill
from proof import ROOT, load_solutions

EXAMPLES = ROOT / "examples"
EXPECTED = EXAMPLES / "expected_scores.csv"
STUDENTS = ("ada", "ben", "cy")


def _points(nb, exercises):
    """Autograded points per exercise in a notebook."""
    from course.assignments import exercise_of

    points = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            name = exercise_of(meta["grade_id"], exercises)
            points[name] = points.get(name, 0) + float(meta.get("points", 0))
    return points


def build(name: str) -> dict[str, tuple[nbformat.NotebookNode, float]]:
    """student → (notebook, expected autograded score)."""
    (assignment,) = resolve(ROOT, [name])
    released = nbformat.read(ROOT / "release" / name / assignment.notebook, as_version=4)
    solutions = load_solutions(name)
    written = getattr(solutions, "WRITTEN", {})
    points = _points(released, assignment.exercises)
    ben_answers, ben_score = {}, 0.0
    for i, exercise in enumerate(e for e in solutions.ALTERNATIVES if e in points):
        if i % 3 == 0:
            ben_answers[exercise] = solutions.ALTERNATIVES[exercise]
            ben_score += points[exercise]
        elif i % 3 == 1:
            ben_answers[exercise] = solutions.MUTANTS[exercise][0]
    return {
        "ada": (fill(released, {**solutions.ALTERNATIVES, **written}), sum(points.values())),
        "ben": (fill(released, ben_answers), ben_score),
        "cy": (released, 0.0),
    }


def expected_scores() -> dict[tuple[str, str], float]:
    with EXPECTED.open() as handle:
        return {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(handle)}


def main(names: list[str]) -> None:
    todo = [a.name for a in resolve(ROOT, names or None)]
    rows = expected_scores() if EXPECTED.exists() else {}
    rows = {k: v for k, v in rows.items() if k[1] in {a.name for a in resolve(ROOT, None)}}
    for name in todo:
        (assignment,) = resolve(ROOT, [name])
        for student, (nb, score) in build(name).items():
            path = EXAMPLES / student / name / assignment.notebook
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            rows[(student, name)] = score
            print(f"wrote {path.relative_to(ROOT)} (expected score {score:g})")
    with EXPECTED.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "assignment", "score"])
        for (student, name), score in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            writer.writerow([student, name, f"{score:g}"])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    main(sys.argv[1:])
