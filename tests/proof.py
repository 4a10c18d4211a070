"""Grading alternative solutions and mutants through the real pipeline.

For an assignment ``A`` the file ``tests/solutions/A.py`` holds

- ``ALTERNATIVES``: exercise → a correct answer cell written differently from the
  instructor's (must earn every point of the exercise);
- ``MUTANTS``: exercise → a list of plausible wrong answer cells (each must lose
  points on that exercise).

One scratch course grades, in a single ``course.grading.grade`` run: the source
notebook (``instructor``), the untouched release (``untouched``), all
alternatives together (``alternative``), and "mutant sets" (``mutants_k``): many
exercises' mutants in one notebook, so that proving an assignment costs a
handful of autogrades, not one per mutant.

A mutant's lost points must be its own exercise's doing. Where one exercise uses
another (``conv1d`` calls the learner's ``conv2d``; a test cell calls an earlier
answer), a neighbour's mutant could make it fail whatever its own tests check.
So a mutant set never holds a mutant together with a mutant of anything it
depends on, or of anything that depends on it: every exercise a mutant needs is
the correct alternative in its notebook. Dependencies are read from the code:
exercise ``A`` depends on ``B`` when ``A``'s answers or test cells name
something ``B``'s answer defines (transitively).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.assignments import Assignment, exercise_of, find_root, resolve
from course.grading import Result, by_exercise, grade_in_scratch
from course.notebooks import fill
from course.release import fresh_release

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


def _cells(nb, assignment: Assignment):
    """(answers: exercise → code, tests: exercise → [code]) of a source notebook."""
    answers, tests = {}, {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type != "code" or not gid:
            continue
        if meta.get("solution"):
            answers[gid] = cell.source
        elif meta.get("grade"):
            tests.setdefault(exercise_of(gid, assignment.exercises), []).append(cell.source)
    return answers, tests


def _parse(code: str) -> ast.AST | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _defined(code: str) -> set[str]:
    tree = _parse(code)
    if tree is None:
        return set(re.findall(r"^(?:def|class)\s+(\w+)", code, re.M))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _used(code: str) -> set[str]:
    tree = _parse(code)
    if tree is None:
        return set(re.findall(r"[A-Za-z_]\w*", code))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def dependencies(source, solutions, assignment: Assignment) -> dict[str, set[str]]:
    """exercise → the other exercises it uses, directly or through others."""
    answers, tests = _cells(source, assignment)
    owner = {}
    for exercise, code in answers.items():
        for name in _defined(code):
            owner.setdefault(name, exercise)
    direct = {}
    for exercise in solutions.ALTERNATIVES:
        texts = [answers.get(exercise, ""), solutions.ALTERNATIVES[exercise],
                 *solutions.MUTANTS.get(exercise, []), *tests.get(exercise, [])]
        used = set().union(*map(_used, texts))
        direct[exercise] = {owner[n] for n in used if n in owner and owner[n] != exercise}
    closed = {}
    for exercise in direct:
        seen, todo = set(), list(direct[exercise])
        while todo:
            other = todo.pop()
            if other not in seen and other != exercise:
                seen.add(other)
                todo += direct.get(other, ())
        closed[exercise] = seen
    return closed


def mutant_sets(solutions, depends: dict[str, set[str]]) -> list[dict[str, int]]:
    """Mutants grouped into notebooks (exercise → mutant index per set): a set never holds
    an exercise twice, nor two exercises one of which depends on the other."""
    sets: list[dict[str, int]] = []
    for exercise, mutants in solutions.MUTANTS.items():
        for k in range(len(mutants)):
            for chosen in sets:
                clash = exercise in chosen or any(
                    other in depends.get(exercise, ()) or exercise in depends.get(other, ()) for other in chosen)
                if not clash:
                    chosen[exercise] = k
                    break
            else:
                sets.append({exercise: k})
    return sets


@dataclass
class GradedClass:
    assignment: Assignment
    results: dict[str, Result]
    sets: list[dict[str, int]]
    depends: dict[str, set[str]]

    def mutant_set(self, exercise: str, k: int) -> str:
        """The submission holding the k-th (1-based) mutant of ``exercise``."""
        for index, chosen in enumerate(self.sets):
            if chosen.get(exercise) == k - 1:
                return f"mutants_{index + 1}"
        raise KeyError(f"no mutant {k} of {exercise}")

    def mutant_keeps(self, exercise: str, k: int) -> str | None:
        """Why the k-th mutant of ``exercise`` proves nothing (it keeps its points), or None."""
        score, top = self.exercise_scores(self.mutant_set(exercise, k))[exercise]
        if score < top:
            return None
        return f"{self.assignment.name}: mutant {k} of {exercise} keeps {score}/{top} points"

    def exercise_scores(self, student: str) -> dict[str, tuple[float | None, float]]:
        return by_exercise(self.results[student], self.assignment.exercises)

    def autograded_cells(self, student: str) -> dict[str, tuple[float | None, float]]:
        """Scores of test cells (manual answers left out)."""
        return {gid: s for gid, s in self.results[student].cells.items() if gid.startswith("test_")}


def grade_class(name: str, workdir: Path, *, edit=None, only: list[str] | None = None,
                examples: bool = True) -> GradedClass:
    """Grade the instructor's notebook, the release, the alternatives and every mutant set.

    ``edit(source_notebook)`` changes the source first (the proof of the proof weakens a
    test with it): the course is then copied into ``workdir/course`` and graded there.
    ``only`` limits the mutants to those exercises."""
    (assignment,) = resolve(ROOT, [name])
    solutions = load_solutions(name)
    root = ROOT
    source = nbformat.read(ROOT / "source" / name / assignment.notebook, as_version=4)
    if edit is not None:
        root = workdir / "course"
        (root / "source" / name).mkdir(parents=True)
        for file in ("nbgrader_config.py", "SYLLABUS.md"):
            shutil.copy(ROOT / file, root / file)
        edit(source)
        nbformat.write(source, root / "source" / name / assignment.notebook)
        released_dir = fresh_release(root, assignment, workdir / "release-scratch")
        released = nbformat.read(released_dir / assignment.notebook, as_version=4)
    else:
        released = nbformat.read(ROOT / "release" / name / assignment.notebook, as_version=4)
    depends = dependencies(source, solutions, assignment)
    sets = mutant_sets(solutions, depends)
    if only is not None:
        sets = [kept for kept in ({e: k for e, k in chosen.items() if e in only} for chosen in sets) if kept]
    submissions = {
        "instructor": source,
        "untouched": released,
        "alternative": fill(released, solutions.ALTERNATIVES),
    }
    for index, chosen in enumerate(sets):
        answers = dict(solutions.ALTERNATIVES)
        answers.update({exercise: solutions.MUTANTS[exercise][k] for exercise, k in chosen.items()})
        submissions[f"mutants_{index + 1}"] = fill(released, answers)
    for folder in sorted((ROOT / "examples").glob(f"*/{name}")) if examples else []:  # bundled examples
        submissions[f"example_{folder.parent.name}"] = (folder / assignment.notebook).read_bytes()
    results = grade_in_scratch(root, assignment, submissions, workdir / "graded")
    return GradedClass(assignment, results, sets, depends)


def exercise_of_cell(grade_id: str, assignment: Assignment) -> str:
    return exercise_of(grade_id, assignment.exercises)
