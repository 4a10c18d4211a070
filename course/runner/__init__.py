"""What runs inside the sandbox when a notebook is graded: two processes per notebook.

- ``learner``: the learner's process. It runs the notebook's own cells (answers,
  lessons, the setup cell) and answers requests from the tester. It never holds a
  test cell, an expected value or the socket the results go to.
- ``tester``: the tester's process. It holds the job, runs the test cells, and
  decides every verdict on plain data.
- ``codec``: the only thing that crosses between them: plain data decoded into fresh
  objects of exact types, and handles to objects that stay where they live.
- ``probes``: fixed course code the tester asks the learner's process to run where
  only that process can observe the point of a lesson (shared memory, autograd).

The threat model is in the README ("What a grade can be trusted for").
"""
