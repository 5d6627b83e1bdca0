import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocr_core.files import atomic_path, move_aside

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TestAtomicFolder:
    def test_a_failed_block_leaves_no_folder(self, tmp_path):
        with pytest.raises(RuntimeError), atomic_path(tmp_path / "out", is_dir=True) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("killed")
        assert list(tmp_path.iterdir()) == []

    def test_an_existing_folder_is_kept_whole_and_the_new_one_dropped(self, tmp_path):
        # another run may be reading the folder there: it holds the same key's content
        for content in ("first", "second"):
            with atomic_path(tmp_path / "out", is_dir=True) as tmp:
                (tmp / content).write_text(content)
        assert [p.name for p in tmp_path.iterdir()] == ["out"]
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["first"]

    def test_a_folder_moved_aside_is_kept_for_its_readers(self, tmp_path):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "f").write_text("read me")
        aside = move_aside(tmp_path / "out")
        assert (aside / "f").read_text() == "read me" and not (tmp_path / "out").exists()
        assert move_aside(tmp_path / "out") is None

    def test_two_processes_writing_the_same_folder_both_succeed(self, tmp_path):
        # Two runs with the same cache key write the same folder at once.
        script = textwrap.dedent("""
            import sys, time
            from pathlib import Path
            from ocr_core.files import atomic_path

            root, writer = Path(sys.argv[1]), sys.argv[2]
            while not (root / "go").exists():
                time.sleep(0.001)
            for round in range(200):
                with atomic_path(root / "cache" / "key", is_dir=True) as tmp:
                    for part in ("a", "b", "c"):
                        (tmp / part).write_text(f"{writer}{round}")
        """)
        processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), writer],
                                      cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
                     for writer in ("x", "y")]
        (tmp_path / "go").touch()
        for process in processes:
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors
        folder = tmp_path / "cache" / "key"
        contents = {(folder / part).read_text() for part in ("a", "b", "c")}
        assert len(contents) == 1  # all three files from one writer's round
        assert [p.name for p in folder.parent.iterdir()] == ["key"]  # nothing left aside


def test_atomic_outputs_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "file.txt") as tmp:
            tmp.write_text("x")
        with atomic_path(tmp_path / "folder", is_dir=True) as tmp:
            (tmp / "inner").write_text("y")
    finally:
        os.umask(previous)
    assert (tmp_path / "file.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755
