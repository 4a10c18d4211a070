"""A Jupyter server extension that ``course lab`` switches on: the Validate button judges
test cells as grading does.

nbgrader's validate handler builds ``nbgrader.validator.Validator``, which fails a test
cell that wrote anything to stderr (a torch warning from a right answer); its
preprocessors are not configurable. Loading this extension makes the handler build
``course.nbgrader_ext.CourseValidator`` instead, the validator ``course validate`` uses.
"""

from __future__ import annotations


def _jupyter_server_extension_points():
    return [{"module": "course.lab_extension"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from nbgrader.server_extensions.validate_assignment import handlers

    from course.nbgrader_ext import CourseValidator

    handlers.Validator = CourseValidator
    serverapp.log.info("course: the Validate button uses course.nbgrader_ext.CourseValidator (stderr is not failure)")
