"""A PyTorch course in autograded notebooks.

``course.checks`` is what the notebooks' test cells import; the rest is the
instructor's tooling (release, grade, check), wired together by ``course.cli``.
"""

__version__ = "0.1.0"
