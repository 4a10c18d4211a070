"""One place that builds nbgrader's API for a course root, with the course's config."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from course.assignments import CONFIG_FILE, CourseError

_EXCEPTION = re.compile(r"^\s*((?:[\w.]+\.)?\w*(?:Error|Exception|Exit)\b:?.*)$")

# nbgrader's gradebook triggers SQLAlchemy 2 autoflush warnings that say nothing to a user.
try:
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)
except ImportError:  # pragma: no cover
    pass


def load_config(root: Path) -> Config:
    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    return config


def api_for(root: Path, db_url: str | None = None, extra: Config | None = None) -> NbGraderAPI:
    """nbgrader's API on ``root`` (``db_url`` defaults to nbgrader_config.py's: ``COURSE_DB_URL``
    when set, else ``root/gradebook.db``)."""
    config = load_config(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    if extra:
        config.merge(extra)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.WARNING)
    return api


def reason(result: dict) -> str:
    """The one line that says why an nbgrader call failed: the innermost exception
    in its log, else the last line of its error."""
    log = (result.get("log") or "").splitlines()
    errors = [m[1] for line in log if (m := _EXCEPTION.match(line))]
    errors = [e for e in errors if "see the the above traceback" not in e and "see the above traceback" not in e]
    if errors:
        return errors[-1]
    text = (result.get("error") or "").strip().splitlines()
    return next((line.strip() for line in reversed(text) if line.strip()), "no details")


def ok(result: dict, doing: str) -> dict:
    """Raise a one-line ``CourseError`` for a failed nbgrader call."""
    if not result.get("success"):
        raise CourseError(f"{doing} failed: {reason(result)}")
    return result
