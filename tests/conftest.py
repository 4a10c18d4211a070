import os
import sys
from pathlib import Path

# nbgrader shells out to alembic: the interpreter's bin/ must be on PATH.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
sys.path.insert(0, str(Path(__file__).parent))


import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep ``xdist_group`` tests on one worker: pytest-xdist 3.8 writes its group suffix to
    ``item._nodeid``, which pytest 9.2 no longer reads (pytest-xdist#1386)."""
    for item in items:
        legacy = item.__dict__.get("_nodeid")
        if legacy and legacy != item.nodeid and hasattr(item, "_id"):
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(legacy)
