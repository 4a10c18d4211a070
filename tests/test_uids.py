"""Two `course grade` processes at once never share sandbox uids (``uid_lease``)."""

from __future__ import annotations

import subprocess
import sys
import time

HOLD = """
import sys, time
from course.grading.sandbox import uid_lease
print(uid_lease(sys.argv[1]), flush=True)
time.sleep(3)
"""


def test_concurrent_graders_get_different_uid_blocks(tmp_path):
    folder = str(tmp_path / "leases")
    runs = [subprocess.Popen([sys.executable, "-c", HOLD, folder], stdout=subprocess.PIPE, text=True)
            for _ in range(3)]
    leases = [int(run.stdout.readline()) for run in runs]
    for run in runs:
        run.wait(timeout=30)
    assert len(set(leases)) == 3, leases
    time.sleep(0.1)
    again = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(3)", ""), folder],
                           capture_output=True, text=True, timeout=30)
    assert int(again.stdout) == min(leases)  # a lease is freed when its process ends
