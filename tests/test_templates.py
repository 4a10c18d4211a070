"""The CI templates: the workflow a student can edit holds no secret and leaves no token
behind; failures are not hidden by pipes; a failed step still reports; every checkout of
student code keeps no credentials; the shard count is written once."""

from __future__ import annotations

import re

import pytest
import yaml

from proof import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.yml"))


def steps(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_there_are_templates():
    names = {p.name for p in TEMPLATES}
    assert {"autograde.yml", "grade-class.yml", "grade-matrix.yml"} <= names, names


def test_the_students_workflow_holds_no_secret():
    text = (ROOT / "templates" / "github-classroom" / "autograde.yml").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "secrets." not in code and "token:" not in code, "a secret in a workflow the student can edit"
    reporter = [s for s in steps(ROOT / "templates" / "github-classroom" / "autograde.yml")
                if "grading-reporter" in s.get("uses", "")]
    assert reporter and all(s.get("if") == "always()" for s in reporter)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_credentials_persist_and_no_pipe_hides_a_failure(path):
    for step in steps(path):
        if step.get("uses", "").startswith("actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, (path.name, step)
        run = step.get("run", "")
        if re.search(r"\|\s*tee\b", run):
            assert "pipefail" in run, (path.name, step.get("name"))
        if "pip install" in run and "-e ." in run.replace("./course", "."):
            assert "whl/cpu" in run, (path.name, "installs the CUDA build of torch on every run")


def test_the_shard_count_is_written_once():
    text = (ROOT / "templates" / "github-actions" / "grade-matrix.yml").read_text(encoding="utf-8")
    assert "SHARDS" not in text and "strategy.job-total" in text
