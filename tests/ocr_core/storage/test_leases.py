"""Locks on a store: one holder at a time, renewed while held, free once a dead holder's lease ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocr_core.storage import open_root
from ocr_core.storage.errors import LockTimeout
from ocr_core.storage.leases import LEASE_ENV, Lease

PROJECT_ROOT = Path(__file__).resolve().parents[3]

HOLD = """
import sys, time
from ocr_core.storage import open_root
lock = open_root(sys.argv[1]).lock("step")
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_one_holder_at_a_time_and_free_after_release(s3_root):
    first, second = open_root(s3_root).lock("k"), open_root(s3_root).lock("k")
    assert first.try_acquire() and first.is_locked()
    assert not second.try_acquire()
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0.3)
    first.release()
    assert not second.is_locked() and second.try_acquire()
    second.release()


def test_a_held_lease_is_renewed_past_its_time_to_live(s3_root, monkeypatch):
    monkeypatch.setenv(LEASE_ENV, "3")  # renewed each second: a loaded machine keeps it
    holder = Lease(open_root(s3_root), "locks/k.json")
    with holder.held():
        time.sleep(7)  # more than twice the lease: only renewals keep it
        assert not Lease(open_root(s3_root), "locks/k.json").try_acquire()


def test_a_killed_holders_lock_frees_when_its_lease_runs_out(s3_root, monkeypatch):
    monkeypatch.setenv(LEASE_ENV, "5")  # renewed every 1.7 s: a loaded machine keeps it
    holder = subprocess.Popen([sys.executable, "-c", HOLD, s3_root], cwd=PROJECT_ROOT,
                              env=os.environ | {LEASE_ENV: "5"}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = open_root(s3_root).lock("step")
        assert not waiter.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        start = time.monotonic()
        waiter.acquire(timeout=20)
        assert time.monotonic() - start < 12  # the lease's 5 s, not the wait's 20
        waiter.release()
    finally:
        holder.kill()
        holder.wait()


def test_two_takers_of_an_expired_lock_cannot_both_win(s3_root):
    root = open_root(s3_root)
    root.write_json("locks/k.json", {"holder": "a dead process", "expires": time.time() - 1})
    takers = [Lease(root, "locks/k.json") for _ in range(4)]
    won = [taker for taker in takers if taker.try_acquire()]
    assert len(won) == 1
    won[0].release()
