"""The local Prefect server kept between commands: Prefect's app on 127.0.0.1, which stops once
no command has used it for a while.

Run by `flows.local_server` as `python -m flows.kept_server --port P --folder F --keep S`. The
commands that use it each hold a file named by their process id in `F/users`; the server exits
`S` seconds after the last of those processes has gone (ended, killed or crashed), and removes
the record in `F` that named it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

RECORD = "server.json"
USERS = "users"
LOCK = "lock"


def live_users(folder: Path) -> int:
    """How many processes named in `folder/users` still run; the files of gone ones are removed."""
    count = 0
    for entry in (folder / USERS).glob("*"):
        if entry.name.isdigit() and running(int(entry.name)):
            count += 1
        else:
            entry.unlink(missing_ok=True)
    return count


def running(pid: int) -> bool:
    """Whether process `pid` runs: exists and is not a zombie (where nothing reaps orphans, as
    in a container whose first process is a shell, a killed server stays one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process of that number: it runs
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): the signal's answer stands
        return True
    return state != "Z"


async def _serve(port: int, folder: Path, keep: float) -> None:
    import uvicorn
    from filelock import FileLock

    config = uvicorn.Config("prefect.server.api.server:create_app", factory=True,
                            host="127.0.0.1", port=port, log_level="error", lifespan="on")
    server = uvicorn.Server(config)

    async def stop_when_idle() -> None:
        idle_since = time.monotonic()
        while not server.should_exit:
            await asyncio.sleep(0.5)
            if live_users(folder):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= keep:
                with FileLock(folder / LOCK):  # a command attaching now sees a record or none
                    if not live_users(folder):
                        _forget(folder)
                        server.should_exit = True

    watcher = asyncio.create_task(stop_when_idle())
    try:
        await server.serve()
    finally:
        watcher.cancel()


def _forget(folder: Path) -> None:
    """Remove the record, if it still names this process (a newer server may have replaced it)."""
    record = folder / RECORD
    with contextlib.suppress(OSError, ValueError):
        if json.loads(record.read_text())["pid"] == os.getpid():
            record.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--keep", type=float, required=True, help="seconds to stay without users")
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.port, args.folder, args.keep))
    finally:
        _forget(args.folder)


if __name__ == "__main__":
    main()
