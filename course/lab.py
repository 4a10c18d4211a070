"""``course lab``: JupyterLab at the course root, with nbgrader's extensions working.

nbgrader's server extensions read ``nbgrader_config.py`` from the server's working
directory (Formgrader, the Validate button) and Formgrader only works when the course
root is inside the server's root, so JupyterLab must run *in* the course root:

- students open ``release/<assignment>/<notebook>.ipynb`` from the file browser and
  press **Validate** in the notebook toolbar (``course validate`` in a terminal does
  the same and exits non-zero on a failure);
- instructors open **Nbgrader → Formgrader**: assignments, submissions and scores
  from the gradebook (``gradebook.db``, or ``COURSE_DB_URL``), and manual grading of
  written answers.

The four nbgrader server extensions (and ``course.lab_extension``: Validate judges stderr
as grading does) are switched on for this server whatever the
user's ``jupyter server extension`` settings say; the lab extension ships with the
nbgrader package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# nbgrader's server extensions this course relies on (all four ship with nbgrader), and the course's.
SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
    "course.lab_extension",  # Validate judges stderr as grading does
)
LAB_EXTENSION = "@jupyter/nbgrader"


def command(root: Path, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The ``jupyter lab`` command line for ``root`` (run it with ``cwd=root``)."""
    args = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(root).resolve()}"]
    for name in SERVER_EXTENSIONS:
        args.append(f"--ServerApp.jpserver_extensions={name}=True")
    return [*args, *extra]


def environment(root: Path, base: dict | None = None) -> dict:
    """The environment for the server: this interpreter's ``bin/`` first on PATH (nbgrader
    runs alembic, a terminal's ``course`` is this venv's), ``COURSE_ROOT`` set."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = bindir + (os.pathsep + path if path else "")
    env["COURSE_ROOT"] = str(Path(root).resolve())
    return env


def problems() -> list[str]:
    """What stops nbgrader's extensions from working in this environment, one line each.
    Reads the files Jupyter reads, without importing nbgrader or Jupyter's server (seconds)."""
    import importlib.util
    import json

    out = []
    if importlib.util.find_spec("nbgrader") is None:
        out.append("nbgrader is not installed: pip install 'nbgrader==0.9.6'")
    if importlib.util.find_spec("jupyterlab") is None or importlib.util.find_spec("jupyter_core") is None:
        return out + ["JupyterLab is not installed: pip install 'jupyterlab>=4,<5'"]
    from jupyter_core.paths import jupyter_config_path, jupyter_path

    if not any((Path(d) / LAB_EXTENSION / "package.json").is_file() for d in jupyter_path("labextensions")):
        out.append(f"the JupyterLab extension {LAB_EXTENSION} is not installed: pip install 'nbgrader==0.9.6'")
    disabled: set[str] = set()
    for folder in (Path(d) / "labconfig" for d in jupyter_config_path()):
        files = [folder / "page_config.json", *sorted((folder / "page_config.d").glob("*.json"))]
        for file in files:
            try:
                entry = json.loads(file.read_text(encoding="utf-8")).get("disabledExtensions") or []
            except (OSError, ValueError, AttributeError):
                continue
            items = entry.items() if isinstance(entry, dict) else ((name, True) for name in entry)
            disabled |= {str(name) for name, off in items if off}
    for name in sorted(d for d in disabled if d == LAB_EXTENSION or d.startswith(LAB_EXTENSION + ":")):
        what = "plugin" if ":" in name else "extension"
        out.append(f"the JupyterLab {what} {name} is disabled: jupyter labextension enable {name}")
    return out


def main(root: Path, args) -> int:
    """Start JupyterLab at ``root``; extra arguments (``args.jupyter_args``) go to ``jupyter lab``."""
    root = Path(root).resolve()
    extra = [a for a in (getattr(args, "jupyter_args", None) or []) if a != "--"]
    trouble = problems()
    for line in trouble:
        print(f"course lab: {line}", file=sys.stderr)
    if trouble:
        return 2
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        extra.append("--allow-root")  # containers and CI run as root; Jupyter refuses without it
    print(f"course lab: JupyterLab at {root}: students open release/, instructors Nbgrader → Formgrader", flush=True)
    # Replace this process: Ctrl+C then reaches Jupyter alone, which asks before it stops.
    os.chdir(root)
    os.execve(sys.executable, command(root, extra), environment(root))
    return 0  # pragma: no cover (execve does not return)
