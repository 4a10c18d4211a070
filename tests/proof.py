"""Grading alternative solutions and mutants through the real pipeline.

For an assignment ``A`` the file ``tests/solutions/A.py`` holds

- ``ALTERNATIVES``: exercise → a correct answer cell written differently from the
  instructor's (must earn every point of the exercise);
- ``MUTANTS``: exercise → a list of plausible wrong answer cells (each must lose
  points on that exercise).

One scratch course grades, in a single ``course.grading.grade`` run: the source
notebook (``instructor``), the untouched release (``untouched``), all
alternatives together (``alternative``), and "mutant set k" (``mutants_k``:
every exercise's k-th mutant, the alternative where an exercise has fewer), so
that proving an assignment costs a handful of autogrades, not one per mutant.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.assignments import Assignment, exercise_of, find_root, resolve
from course.grading import Result, by_exercise, grade_in_scratch
from course.notebooks import fill

ROOT = find_root(Path(__file__).parent)
SOLUTIONS = Path(__file__).parent / "solutions"


def load_solutions(name: str):
    path = SOLUTIONS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def proven_assignments() -> list[str]:
    """Assignments present in source/ (each must have its solutions file)."""
    return [a.name for a in resolve(ROOT, None)]


@dataclass
class GradedClass:
    assignment: Assignment
    results: dict[str, Result]
    mutant_sets: int

    def exercise_scores(self, student: str) -> dict[str, tuple[float | None, float]]:
        return by_exercise(self.results[student], self.assignment.exercises)

    def autograded_cells(self, student: str) -> dict[str, tuple[float | None, float]]:
        """Scores of test cells (manual answers left out)."""
        return {gid: s for gid, s in self.results[student].cells.items() if gid.startswith("test_")}


def grade_class(name: str, workdir: Path) -> GradedClass:
    (assignment,) = resolve(ROOT, [name])
    solutions = load_solutions(name)
    source = nbformat.read(ROOT / "source" / name / assignment.notebook, as_version=4)
    released = nbformat.read(ROOT / "release" / name / assignment.notebook, as_version=4)
    mutant_sets = max((len(m) for m in solutions.MUTANTS.values()), default=0)
    submissions = {
        "instructor": source,
        "untouched": released,
        "alternative": fill(released, solutions.ALTERNATIVES),
    }
    for k in range(mutant_sets):
        answers = dict(solutions.ALTERNATIVES)
        for exercise, mutants in solutions.MUTANTS.items():
            if k < len(mutants):
                answers[exercise] = mutants[k]
        submissions[f"mutants_{k + 1}"] = fill(released, answers)
    for folder in sorted((ROOT / "examples").glob(f"*/{name}")):  # the bundled example submissions
        submissions[f"example_{folder.parent.name}"] = (folder / assignment.notebook).read_bytes()
    results = grade_in_scratch(ROOT, assignment, submissions, workdir)
    return GradedClass(assignment, results, mutant_sets)


def exercise_of_cell(grade_id: str, assignment: Assignment) -> str:
    return exercise_of(grade_id, assignment.exercises)
