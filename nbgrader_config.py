"""nbgrader's configuration for this course (the course root is this folder).

Layout: source/ (instructor) → release/ (students) → submitted/<student>/ →
autograded/<student>/ and feedback/<student>/; the gradebook is gradebook.db, or the
database named by the environment variable COURSE_DB_URL.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader)

# The gradebook: gradebook.db at the course root (nbgrader's default), or a database server that
# several graders share (`course grade --cluster`, `--shard`), e.g.
#   export COURSE_DB_URL=postgresql://grader:secret@db.example.org:5432/course
# (SQLAlchemy URL; postgresql:// uses psycopg 3). Every `course` and `nbgrader` command uses it.
if os.environ.get("COURSE_DB_URL"):
    c.CourseDirectory.db_url = os.environ["COURSE_DB_URL"]

c.CourseDirectory.course_id = "pytorch-course"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".hypothesis", "feedback"]

# An unanswered exercise says what to do.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading runs each submission in a bubblewrap sandbox (course/grading/sandbox.py): no network,
# the course's source/, gradebook and other students' work out of reach, and these limits.
# `course grade` prints them when it starts; its flags override some of them for one run.
# Shown here with their defaults (written once, in course/grading/sandbox.py `Limits`):
# uncomment a line to change it for this course.
# c.Sandbox.memory = "4G"  # memory one submission may use
# c.Sandbox.cell_timeout = 120  # seconds of wall clock per cell
# c.Sandbox.notebook_timeout = 600  # seconds of wall clock per notebook
# c.Sandbox.processes = 64  # processes and threads at once
# c.Sandbox.cell_output = "1M"  # output (text, images) per cell; more is cut off
# c.Sandbox.notebook_output = "16M"
# c.Sandbox.file_size = "256M"  # the largest file a submission may write
# c.Sandbox.tmp_size = "1G"  # its scratch space, in memory
# c.Sandbox.jobs = 0  # submissions at once; 0: one per core
# What a submission folder may hold; anything more (or a link, a device, a FIFO) makes it `invalid`.
# Only the notebook is ever copied out of it (course/grading/intake.py).
# c.Sandbox.notebook_size = "16M"
# c.Sandbox.submission_size = "64M"
# c.Sandbox.submission_files = 200
# A test cell scores all or nothing: nbgrader would read a number shown by its last expression
# (a check that returns the learner's value) as partial credit.
# c.Sandbox.partial_credit = False

# `course validate` (a student's own machine) runs nbgrader's kernel-based validator.
c.Execute.timeout = 120
# The kernel warns on every start that it talks to the grader over loopback TCP; that is noise here.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]

# nbgrader's traps, closed (see course/nbgrader_ext.py).
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "course.nbgrader_ext.RestoreDeletedCells",
    "nbgrader.preprocessors.OverwriteCells",
    "course.nbgrader_ext.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "course.nbgrader_ext.SandboxExecute",  # in place of nbgrader.preprocessors.Execute
    "course.nbgrader_ext.StderrIsNotFailure",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "course.nbgrader_ext.SaveAutoGrades",
    "course.nbgrader_ext.SanitizeStudentMarkup",  # after the grades: nbgrader's checksums see the original
    "nbgrader.preprocessors.AssignLatePenalties",
    "course.nbgrader_ext.CheckCellMetadata",
]
# Students' HTML never runs in anyone's browser: the feedback pages and Formgrader's (both
# nbconvert's HTMLExporter) clean markdown and outputs; the grader also drops scripts, widgets
# and SVG from outputs and cleans their HTML before they reach the autograded notebook.
c.HTMLExporter.sanitize_html = True
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "course.nbgrader_ext.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
