"""What the browser tests (and ``scripts/screenshots.py``) share: a scratch copy of the
course, a JupyterLab server started exactly as ``course lab`` starts it, and a real
Chromium driven by Playwright.

Every process started here is stopped by its own id (the server's process group, then
any kernel it left behind), on failure too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "test-output" / "browser"
COPIED = ["source", "release", "examples", "nbgrader_config.py", "SYLLABUS.md"]
TOKEN = "course-browser-test"
VIEWPORT = {"width": 1400, "height": 900}


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, as one line saying how to fix it; None if they can."""
    missing = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"no Chromium at {CHROMIUM} (install: sudo apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not importable (install: .venv/bin/pip install playwright, "
                       "no `playwright install`: Debian's chromium is used)")
    return ("browser tests skipped: " + "; ".join(missing)) if missing else None


# --- the course, in a scratch folder ---------------------------------------------------

def scratch_course(target: Path) -> Path:
    """Copy what a course root needs (source/, release/, examples/, the config, the
    syllabus) into ``target``: the real course's gradebook and folders are never touched."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(src, target / name)
    return target


FIGURE_NOTEBOOK = "lesson_figure/figure.ipynb"
FIGURE_TITLE = "ReLU and its gradient"


def write_figure_notebook(root: Path) -> Path:
    """A small lesson notebook that draws one matplotlib figure (the tests' own, so that
    they do not depend on which assignments have figures)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("## A lesson figure\n\nThe activation and its gradient, drawn with matplotlib."),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import numpy as np\n\n"
            "x = np.linspace(-3, 3, 61)\n"
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            "ax.plot(x, np.maximum(x, 0), label='relu(x)')\n"
            "ax.plot(x, (x > 0).astype(float), '--', label='gradient')\n"
            f"ax.set_title({FIGURE_TITLE!r})\n"
            "ax.legend()\n"
            "plt.show()"
        ),
    ]
    path = root / FIGURE_NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def grade_demo_class(root: Path, assignment: str = "00_setup") -> subprocess.Popen:
    """Submit the bundled examples of ``assignment`` and grade them with ``course grade``
    in a child process, so that the server and browser start meanwhile. ``wait_for``
    collects it."""
    for folder in sorted((root / "examples").glob(f"*/{assignment}")):
        shutil.copytree(folder, root / "submitted" / folder.parent.name / assignment, dirs_exist_ok=True)
    log = open(grading_log(root), "w")
    try:
        # Niced: the browser tests, which a person would be waiting on, go first.
        return subprocess.Popen([sys.executable, "-m", "course", "--root", str(root), "grade", "--strict", assignment],
                                cwd=root, env=_with_bin(os.environ), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=lambda: os.nice(10))
    finally:
        log.close()


def grading_log(root: Path) -> Path:
    """Where ``grade_demo_class`` writes (beside the course root: not in the file browser)."""
    return root.parent / f"{root.name}-grading.log"


def wait_for(process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Wait for the grading process; stop it and fail with its log's tail if it overruns
    or fails."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process_group(process)
        raise AssertionError(f"grading the demo class took over {timeout:.0f} s: {_tail(log)}")
    if process.returncode:
        raise AssertionError(f"grading the demo class failed (exit {process.returncode}): {_tail(log)}")


def _with_bin(env) -> dict:
    env = dict(env)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- processes ------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), so that kernels, which run in their own
    sessions, are stopped along with their server."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop_process_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process's group (it was started in a new session) and its descendants,
    then SIGKILL whatever is left after ``grace`` seconds."""
    if process.poll() is not None:
        return
    descendants = _children(process.pid) if Path("/proc").is_dir() else []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        try:
            process.wait(grace)
            if sig == signal.SIGTERM and not any(_alive(p) for p in descendants):
                return
        except subprocess.TimeoutExpired:
            pass
    process.wait(grace)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # a zombie (exited, not yet reaped by its parent) is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``course lab`` (course.lab.command) on 127.0.0.1, a free port and a token, with its
    own Jupyter config, settings and workspace folders."""

    def __init__(self, root: Path, state: Path):
        from course.lab import command, environment

        self.root, self.state = root, state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = state / "jupyter.log"
        settings = state / "settings"
        # No news or update prompts over the pages the screenshots show.
        notify = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notify.parent.mkdir(parents=True, exist_ok=True)
        notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        extra = [
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}", f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}", "--LabApp.news_url=None",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            extra.append("--allow-root")
        env = environment(root)
        env.update(JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
                   IPYTHONDIR=str(state / "ipython"))
        self.command, self.env = command(root, extra), env
        self.process: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "LabServer":
        """Start the server; with ``wait=False`` return at once (``ready()`` waits), so that
        the browser starts while JupyterLab boots."""
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(self.command, cwd=self.root, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.ready() if wait else self

    def ready(self, timeout: float = 60.0) -> "LabServer":
        """Wait until the server answers on its port (at once if it already did)."""
        if getattr(self, "_ready", False):
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"JupyterLab exited with {code}: {_tail(self.log)}")
            try:
                self.api("GET", "api/status")
                self._ready = True
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s: {_tail(self.log)}")

    def api(self, method: str, path: str, body=None, timeout: float = 5.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{path}", data=data, method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def page_url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}/{path}{sep}token={TOKEN}"

    def shutdown_kernels(self) -> None:
        with contextlib.suppress(Exception):
            for kernel in self.api("GET", "api/kernels") or []:
                with contextlib.suppress(Exception):
                    self.api("DELETE", f"api/kernels/{kernel['id']}", timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        self.shutdown_kernels()  # through the server first: kernels run in their own sessions
        stop_process_group(self.process)
        self.process = None


@contextlib.contextmanager
def lab_server(root: Path, wait: bool = True):
    """A running ``LabServer`` (``wait=False``: starting; call ``ready()``), always stopped."""
    state = Path(tempfile.mkdtemp(prefix="course-lab-state-"))
    server = LabServer(root, state)
    try:
        yield server.start(wait)
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


# --- the browser ----------------------------------------------------------------------

@contextlib.contextmanager
def chromium():
    """A Playwright browser context on Debian's Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="course-chromium-"))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, accept_downloads=False,
        )
        try:
            yield context
        finally:
            with contextlib.suppress(Exception):
                context.close()
            shutil.rmtree(profile, ignore_errors=True)


class Shots:
    """Numbered PNG screenshots of one test's steps under ``test-output/browser/``."""

    def __init__(self, name: str, folder: Path = SCREENSHOTS):
        self.folder, self.name, self.count = folder, name, 0
        self.started, self.times = time.monotonic(), []
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{name}-*.png"):
            old.unlink()

    def __call__(self, page, step: str, **kwargs) -> Path:
        self.count += 1
        path = self.folder / f"{self.name}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), **kwargs)
        self.times.append((step, round(time.monotonic() - self.started, 1)))
        print(f"{self.name}: {step} at {self.times[-1][1]} s", flush=True)
        return path


# --- JupyterLab, as a user drives it --------------------------------------------------

def open_lab(page, server: LabServer, workspace: str, path: str = "") -> None:
    """JupyterLab in a fresh workspace of its own (``?reset``: no tabs left by another test)."""
    tail = f"/tree/{path}" if path else ""
    page.goto(server.page_url(f"lab/workspaces/{workspace}{tail}?reset"))
    page.locator(".jp-DirListing-item").first.wait_for(timeout=45_000)


def open_notebook(page, server: LabServer, workspace: str, path: str) -> None:
    """Open ``path`` in JupyterLab and wait for its kernel to be idle."""
    open_lab(page, server, workspace, path)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=45_000)
    wait_idle(page)


_IDLE = """(before) => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    if (!panel) return false;
    const name = panel.querySelector('[data-jp-item-name="kernelName"]');
    const status = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    if (!name || name.textContent.includes('No Kernel')) return false;
    if (!status || status.getAttribute('data-status') !== 'idle') return false;
    const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent);
    if (prompts.some(p => p.includes('*'))) return false;
    return before === null || prompts.join('|') !== before;
}"""


def _prompts(page) -> str:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')).map(p => p.textContent).join('|')"""
    )


def wait_idle(page, timeout: float = 45_000, before: str | None = None) -> None:
    """Wait until the open notebook has a kernel, the kernel is idle and no cell is queued
    or running (``[*]``); with ``before`` (the prompts before a run), until they changed."""
    page.wait_for_function(_IDLE, arg=before, timeout=timeout, polling=200)


def run_all(page, timeout: float = 45_000) -> None:
    """Run > Run All Cells, then wait until it has run: the prompts changed, the kernel is
    idle and nothing is queued."""
    before = _prompts(page)
    menu(page, "Run", "Run All Cells")
    wait_idle(page, timeout, before)


def menu(page, top: str, item: str) -> None:
    """Click ``top`` in JupyterLab's menu bar, then the item labelled exactly ``item``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def code_cell(page, first_line: str):
    """The code cell whose source contains ``first_line``."""
    return page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=first_line)
    ).first


def outputs(cell) -> list[str]:
    """A cell's outputs as text. JupyterLab renders the outputs of cells on screen only:
    scroll the cell into view first."""
    cell.scroll_into_view_if_needed()
    return [t or "" for t in cell.locator(".jp-OutputArea-output").all_text_contents()]


def errors(cell) -> list[str]:
    """A cell's error outputs (tracebacks) as text."""
    cell.scroll_into_view_if_needed()
    return [t or "" for t in cell.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_text_contents()]


def prompt(cell) -> str:
    return (cell.locator(".jp-InputPrompt").text_content() or "").strip()


def replace_source(page, cell, text: str) -> str:
    """Replace a cell's source with ``text`` as a student pasting it would; returns what
    the editor then holds."""
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")  # back to command mode, as after typing
    return cell.locator(".cm-content").first.evaluate(
        "el => Array.from(el.querySelectorAll('.cm-line')).map(l => l.textContent).join('\\n')")


def show_bottom_of(page, locator, margin: int = 40) -> None:
    """Scroll the notebook so that the bottom of ``locator`` sits just above the window's
    bottom edge (a traceback's last line, where the course's message is)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    if box:
        viewport = page.viewport_size or VIEWPORT
        overshoot = box["y"] + box["height"] - (viewport["height"] - margin - 30)
        if overshoot > 0:
            page.mouse.move(viewport["width"] // 2, viewport["height"] // 2)
            page.mouse.wheel(0, overshoot)
            page.wait_for_timeout(300)


def validate(page, timeout: float = 60_000) -> str:
    """Press nbgrader's Validate button; returns the text of its dialog (left open)."""
    page.locator(".validate-button").click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    dialog.wait_for(timeout=timeout)
    return dialog.inner_text()


def close_dialog(page) -> None:
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    page.locator(".jp-Dialog").wait_for(state="detached")


# --- Formgrader, as an instructor drives it -------------------------------------------

def formgrader(page):
    """Nbgrader > Formgrader from JupyterLab's menu; returns the frame it opens in (a
    Playwright ``Frame``: it follows the frame's own navigations)."""
    menu(page, "Nbgrader", "Formgrader")
    iframe = page.locator('iframe[src*="/formgrader"]')
    iframe.wait_for(timeout=30_000)
    frame = iframe.element_handle().content_frame()
    frame.wait_for_url(re.compile(r"/formgrader/manage_assignments"), timeout=30_000)
    frame.locator("#main-table tr td.num-submissions").first.wait_for(timeout=30_000)
    return frame


def _go(frame, link, url: str) -> None:
    """Click ``link`` in Formgrader and wait until the frame shows ``url`` (a regex)."""
    link.click()
    frame.wait_for_url(re.compile(url), timeout=30_000)
    frame.wait_for_load_state()


def assignment_rows(frame) -> dict[str, str]:
    """Manage Assignments: assignment → number of submissions shown."""
    rows = frame.locator("#main-table tr")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        out[(row.locator("td.name").text_content() or "").strip()] = (
            row.locator("td.num-submissions").text_content() or "").strip()
    return out


def submission_rows(frame) -> dict[str, dict]:
    """A notebook's submissions in Manual Grading: student → {score, needs_manual_grade}."""
    rows = frame.locator("#main-table tr")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        student = (row.locator("td.name a.name-shown").text_content() or "").strip()
        out[student] = {
            "score": (row.locator("td.score").text_content() or "").strip(),
            "needs_manual_grade": row.locator("td.needs-manual-grade").get_attribute("data-search") == "needs manual grade",
        }
    return out


def open_submissions(page, frame, assignment: str, notebook: str, students: int) -> dict[str, dict]:
    """Manual Grading → ``assignment`` → ``notebook``, with every student's name shown."""
    exact = lambda text: re.compile(rf"^\s*{re.escape(text)}\s*$")  # noqa: E731
    _go(frame, frame.locator("a", has_text=exact("Manual Grading")).first, r"/formgrader/gradebook/?$")
    _go(frame, frame.locator("#main-table td a", has_text=exact(assignment)),
        rf"/formgrader/gradebook/{assignment}/?$")
    _go(frame, frame.locator("#main-table td a", has_text=exact(notebook)),
        rf"/formgrader/gradebook/{assignment}/{notebook}/?$")
    frame.locator("#main-table tr td.score").nth(students - 1).wait_for(timeout=30_000)
    frame.locator("#toggle_names").click()
    frame.locator("#main-table td.name a.name-shown").first.wait_for()
    page.mouse.move(5, 5)  # no tooltip over the table
    return submission_rows(frame)


def hand_grade(page, frame, student: str, scores: dict[str, float]) -> dict[str, dict]:
    """Open ``student``'s submission in the list on screen and enter ``scores`` (grade_id →
    points) as an instructor does: type, then Tab (Formgrader saves on change). Returns
    what the server answered for each save."""
    _go(frame, frame.locator("#main-table td.name a.name-shown", has_text=re.compile(f"^{re.escape(student)}$")),
        r"/formgrader/submissions/\w+")
    # Scores typed before Formgrader has loaded the grades are overwritten when they arrive.
    frame.wait_for_function(
        "() => window.formgrader && formgrader.grades && formgrader.grades.loaded"
        " && formgrader.comments && formgrader.comments.loaded", timeout=30_000)
    saved = {}
    for grade_id, points in scores.items():
        box = frame.locator(f"input.score#{grade_id}")
        box.wait_for(timeout=30_000)
        box.scroll_into_view_if_needed()
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as response:
            box.fill(f"{points:g}")
            box.press("Tab")
        saved[grade_id] = response.value.json()
    # Show the student's name and the first graded answer, mid-screen (after Formgrader's
    # own animated scroll to the focused input, which would undo ours).
    page.wait_for_timeout(700)
    frame.evaluate("() => { window.jQuery && jQuery('body, html').stop();"
                   " document.activeElement && document.activeElement.blur(); }")
    frame.evaluate("() => typeof toggle_name === 'function' && toggle_name(true)")
    frame.locator(f"input.score#{next(iter(scores))}").evaluate(
        "el => (el.closest('.nbgrader_cell') || el).scrollIntoView({block: 'center'})")
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    return saved
