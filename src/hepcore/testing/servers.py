"""Start a real hepcore host (gunicorn or uvicorn) on 127.0.0.1 in a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is listening
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up in {timeout}s")


@contextlib.contextmanager
def run_server(data_dir: str | os.PathLike[str], kind: str = "wsgi", *, workers: int = 1,
               threads: int = 8, factory: str | None = None, app_dir: str | None = None,
               extra_env: dict[str, str] | None = None,
               wrapper: Sequence[str] = ()) -> Iterator[RunningServer]:
    """Run ``hepcore serve`` (``kind`` ``wsgi`` = gunicorn, ``asgi`` = uvicorn)
    on a free loopback port until the block ends. ``wrapper`` prefixes the
    command (a tracer such as ``strace -f -o FILE``)."""
    port = free_port()
    cmd = [*wrapper, sys.executable, "-m", "hepcore", "--data", str(data_dir), "serve",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--threads", str(threads)]
    if kind == "asgi":
        cmd.append("--asgi")
    if factory:
        cmd += ["--factory", factory]
    if app_dir:
        cmd += ["--app-dir", app_dir]
    log_path = Path(data_dir) / f"server-{kind}-{port}.log"
    env = {**os.environ, **(extra_env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/", process)
        yield RunningServer(url, process, log_path)
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group started with ``start_new_session``; SIGKILL it
    after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
