"""One writer per step key: a lock file under the results root, released when its process dies."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ocr_core.cache.locks import is_step_locked, lock_path, step_lock

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_the_lock_lives_under_the_results_root(tmp_path):
    assert lock_path(tmp_path, "abc") == tmp_path / "locks" / "abc.lock"


def test_a_second_holder_waits_for_the_first(tmp_path):
    order = []

    def second():
        with step_lock(tmp_path, "key"):
            order.append("second")

    with step_lock(tmp_path, "key"):
        assert is_step_locked(tmp_path, "key") and not is_step_locked(tmp_path, "other")
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        order.append("first")
    waiter.join(timeout=10)
    assert order == ["first", "second"]
    assert not is_step_locked(tmp_path, "key")


def test_a_killed_holder_leaves_the_key_free(tmp_path):
    script = ("import sys, time; from pathlib import Path; from ocr_core.cache.locks import step_lock\n"
              "with step_lock(Path(sys.argv[1]), 'key'):\n"
              "    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_step_locked(tmp_path, "key")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert not is_step_locked(tmp_path, "key")
    finally:
        holder.kill()
        holder.stdout.close()
