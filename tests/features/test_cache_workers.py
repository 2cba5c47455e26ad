"""Feature-extraction workers die with the process that started them (issue 8.6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

# A `train`-like parent: extraction in a pool of two workers whose jobs take minutes (the worker
# function is replaced before the pool forks, so the workers run the slow one).
PARENT = textwrap.dedent(
    """
    import sys, time
    from emofusion.features import cache as cache_module
    from emofusion.features.acoustic import AcousticConfig

    def slow(job):
        time.sleep(300)

    cache_module._extract_one = slow
    files = sys.argv[2:]
    cache_module.FeatureCache(AcousticConfig(), root=sys.argv[1]).get_many(files, workers=2, progress=False)
    """
)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status is left


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_extraction_workers_die_with_their_parent(tmp_path, sig):
    files = []
    for i in range(10):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, 0.3 * np.random.default_rng(i).normal(size=8000), 16000)
        files.append(str(path))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "cache"), *files])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers := _children(parent.pid)) < 2:
            assert parent.poll() is None, "the parent ended before starting its workers"
            assert time.monotonic() < deadline, "no workers started"
            time.sleep(0.2)
        time.sleep(1.0)  # let the workers pick up their (endless) jobs
        os.kill(parent.pid, sig)
        parent.wait(timeout=60)
        deadline = time.monotonic() + 20
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if _running(w)], "workers outlived their parent"
    finally:
        for w in set(workers) | set(_children(parent.pid)):
            try:
                os.kill(w, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if parent.poll() is None:
            parent.kill()
