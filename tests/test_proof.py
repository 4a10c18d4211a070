"""For every assignment in source/: the source earns full marks, the release earns
zero, every exercise's alternative solution earns its points and every mutant
loses them, all graded through the real nbgrader pipeline."""

from __future__ import annotations

import pytest

from proof import ROOT, grade_class, load_solutions, proven_assignments

ASSIGNMENTS = proven_assignments()
_graded = {}


def graded(name, tmp_path_factory):
    if name not in _graded:
        _graded[name] = grade_class(name, tmp_path_factory.mktemp(f"proof-{name}"))
    return _graded[name]


def per_assignment(extra=None):
    """Parametrize over assignments, keeping one assignment's tests on one xdist worker."""
    params = []
    for name in ASSIGNMENTS:
        for item in (extra(name) if extra else [None]):
            values = (name,) if item is None else (name, *item)
            params.append(pytest.param(*values, marks=pytest.mark.xdist_group(name),
                                       id="-".join(map(str, values))))
    return params


def _solutions_or_none(name):
    """The solutions module, or None when it is missing (reported by the completeness test)."""
    try:
        return load_solutions(name)
    except FileNotFoundError:
        return None


def exercises(name):
    solutions = _solutions_or_none(name)
    return [(e,) for e in (solutions.ALTERNATIVES if solutions else [])] or [None]


def mutants(name):
    solutions = _solutions_or_none(name)
    return [(e, k + 1) for e, ms in (solutions.MUTANTS.items() if solutions else []) for k in range(len(ms))]


@pytest.mark.parametrize("name", per_assignment())
def test_every_exercise_has_an_alternative_and_two_mutants(name):
    from course.assignments import resolve

    (assignment,) = resolve(ROOT, [name])
    assert _solutions_or_none(name), f"{name}: no tests/solutions/{name}.py with its alternatives and mutants"
    solutions = load_solutions(name)
    missing = [e for e in assignment.exercises if e not in solutions.ALTERNATIVES]
    few = [e for e in assignment.exercises if len(solutions.MUTANTS.get(e, [])) < 2]
    assert not missing, f"{name}: no alternative solution for {missing}"
    assert not few, f"{name}: fewer than two mutants for {few}"


@pytest.mark.slow
@pytest.mark.parametrize("name", per_assignment())
def test_source_earns_full_marks(name, tmp_path_factory):
    g = graded(name, tmp_path_factory)
    cells = g.autograded_cells("instructor")
    assert cells, f"{name}: no autograded test cells"
    lost = {gid: s for gid, s in cells.items() if s[0] != s[1]}
    assert not lost, f"{name}: the source notebook loses points on {lost}: {g.results['instructor'].message}"


@pytest.mark.slow
@pytest.mark.parametrize("name", per_assignment())
def test_untouched_release_earns_zero(name, tmp_path_factory):
    g = graded(name, tmp_path_factory)
    r = g.results["untouched"]
    assert r.status in ("graded", "needs manual grading"), r.message
    assert r.score == 0, f"{name}: the untouched release scores {r.score}: {r.cells}"
    assert all(score == 0 for score, _ in r.cells.values()), r.cells


@pytest.mark.slow
@pytest.mark.parametrize("name,exercise", per_assignment(exercises))
def test_alternative_solution_earns_full_marks(name, exercise, tmp_path_factory):
    g = graded(name, tmp_path_factory)
    score, top = g.exercise_scores("alternative")[exercise]
    assert score == top, f"{name}: the alternative {exercise} scores {score}/{top}"


@pytest.mark.slow
@pytest.mark.parametrize("name,exercise,k", per_assignment(mutants))
def test_mutant_loses_points(name, exercise, k, tmp_path_factory):
    g = graded(name, tmp_path_factory)
    kept = g.mutant_keeps(exercise, k)
    assert kept is None, kept


def test_dependencies_are_read_from_the_code():
    """conv1d calls the learner's conv2d: they never share a mutant set, and every mutant is placed once."""
    import nbformat

    from course.assignments import resolve
    from proof import dependencies, mutant_sets

    (assignment,) = resolve(ROOT, ["06_convolutions"])
    source = nbformat.read(ROOT / "source" / assignment.name / assignment.notebook, as_version=4)
    solutions = load_solutions(assignment.name)
    depends = dependencies(source, solutions, assignment)
    assert "conv2d" in depends["conv1d"], depends["conv1d"]
    sets = mutant_sets(solutions, depends)
    placed = sorted((e, k) for chosen in sets for e, k in chosen.items())
    assert placed == sorted((e, k) for e, ms in solutions.MUTANTS.items() for k in range(len(ms)))
    for chosen in sets:
        assert not ("conv1d" in chosen and "conv2d" in chosen), chosen


@pytest.mark.slow
@pytest.mark.xdist_group("06_convolutions")
def test_the_proof_catches_a_weakened_test(tmp_path):
    """Weaken conv1d's test cell to a check that any function passes: the proof must then
    report every conv1d mutant as keeping its points, even though conv2d (which conv1d
    calls) has mutants that would make conv1d fail if they shared its notebook."""
    from course.assignments import exercise_of
    from proof import grade_class

    def weaken(nb):
        weakened = 0
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code" and exercise_of(meta["grade_id"], ["conv1d", "conv2d"]) == "conv1d":
                cell.source = 'check(callable(conv1d), "conv1d is not defined")'
                weakened += 1
        assert weakened, "no conv1d test cell found"

    g = grade_class("06_convolutions", tmp_path, edit=weaken, only=["conv1d", "conv2d"], examples=False)
    from course.checks.own_work import leans_on_course

    codes = load_solutions("06_convolutions").MUTANTS["conv1d"]
    # a mutant that leans on the course is caught by the grader reading its text, whatever the test says
    tested = [k for k, code in enumerate(codes, 1) if not leans_on_course(code)]
    assert len(tested) >= 2
    kept = [g.mutant_keeps("conv1d", k) for k in tested]
    assert all(kept), f"the weakened conv1d test still 'caught' mutants: {kept}"
    caught = [g.mutant_keeps("conv2d", k) is None for k in range(1, len(load_solutions("06_convolutions").MUTANTS["conv2d"]) + 1)]
    assert caught and all(caught), "conv2d's own (unweakened) tests must still catch its mutants"


@pytest.mark.slow
@pytest.mark.parametrize("name", per_assignment())
def test_examples_score_as_expected(name, tmp_path_factory):
    from examples import STUDENTS, expected_scores

    g = graded(name, tmp_path_factory)
    expected = expected_scores()
    for student in STUDENTS:
        assert (student, name) in expected, f"no example submission of {name} for {student}: run tests/examples.py {name}"
        r = g.results[f"example_{student}"]
        assert r.score == expected[(student, name)], f"example {student}/{name} scores {r.score}, expected {expected[(student, name)]}: {r.cells}"
