"""Bytes whose row never committed (a process killed between the two commits)
are recorded as pending and swept; nothing a client was never told about
stays behind (G3).

In-process tests drive :mod:`hepcore.pending` on a real runtime (SQLite
file, local storage). The integration tests kill real server processes
(gunicorn, uvicorn) with SIGKILL right after an upload's bytes are committed,
through a storage backend plugin loaded by an app factory, as a third party
would load one.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from hepcore import Runtime, build_runtime, load_config
from hepcore.cli import main
from hepcore.errors import StorageError
from hepcore.pending import SWEEP_AGE, PendingSwept
from hepcore.runtime import SWEEP_JOB
from hepcore.testing.clock import FakeClock
from hepcore.testing.servers import run_server


def cli(data: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--data", str(data), *args])
    return code, out.getvalue()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(load_config(tmp_path / "data"), clock=FakeClock(1_800_000_000.0))
    yield rt
    rt.close()


def pending_keys(runtime: Runtime) -> list[str]:
    return runtime.pending.keys()


def commit_bytes(runtime: Runtime, key: str, data: bytes = b"bytes\n") -> None:
    writer = runtime.storage.writer()
    writer.write(data)
    runtime.pending.commit(writer, key)


def test_settling_in_the_row_transaction_ends_the_record(runtime: Runtime) -> None:
    commit_bytes(runtime, "uploader/a.bin")
    assert pending_keys(runtime) == ["uploader/a.bin"]
    with runtime.db.write():
        runtime.pending.settle("uploader/a.bin")
    assert pending_keys(runtime) == []
    runtime.pending.sweep(older_than=0)
    assert runtime.storage.exists("uploader/a.bin")


def test_a_rolled_back_row_keeps_the_record(runtime: Runtime) -> None:
    commit_bytes(runtime, "uploader/b.bin")
    with pytest.raises(RuntimeError), runtime.db.write():
        runtime.pending.settle("uploader/b.bin")
        raise RuntimeError("the row's insert failed")
    assert pending_keys(runtime) == ["uploader/b.bin"]


def test_settle_outside_a_transaction_is_refused(runtime: Runtime) -> None:
    commit_bytes(runtime, "uploader/c.bin")
    with pytest.raises(RuntimeError):
        runtime.pending.settle("uploader/c.bin")
    assert pending_keys(runtime) == ["uploader/c.bin"]


def test_the_sweep_removes_only_records_older_than_its_age(runtime: Runtime) -> None:
    clock = runtime.clock
    assert isinstance(clock, FakeClock)
    commit_bytes(runtime, "cdn/old.bin")
    clock.advance(SWEEP_AGE - 10)
    commit_bytes(runtime, "cdn/young.bin")
    assert runtime.pending.sweep() == 0
    clock.advance(11)
    assert runtime.pending.sweep() == 1
    assert not runtime.storage.exists("cdn/old.bin")
    assert runtime.storage.exists("cdn/young.bin")
    assert pending_keys(runtime) == ["cdn/young.bin"]


def test_a_row_whose_bytes_were_swept_does_not_commit(runtime: Runtime) -> None:
    commit_bytes(runtime, "uploader/slow.bin")
    runtime.pending.sweep(older_than=-1)
    assert not runtime.storage.exists("uploader/slow.bin")
    with pytest.raises(PendingSwept), runtime.db.write() as conn:
        conn.execute("INSERT INTO counters (name, value) VALUES ('row', 1)")
        runtime.pending.settle("uploader/slow.bin")
    assert runtime.counter("row") == 0


def test_a_sweep_that_dies_half_way_leaves_its_claims_to_the_next(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed while sweeping (after taking the records, before the
    bytes are gone) must not turn them into unrecorded orphans."""
    commit_bytes(runtime, "cdn/half.bin")

    def die(key: str) -> bool:
        raise SystemExit("killed")

    with monkeypatch.context() as patched:
        patched.setattr(runtime.storage, "delete", die)
        with pytest.raises(SystemExit):
            runtime.pending.sweep(older_than=-1)
    assert pending_keys(runtime) == ["cdn/half.bin"]
    with pytest.raises(PendingSwept), runtime.db.write():  # the upload may not settle now
        runtime.pending.settle("cdn/half.bin")
    assert runtime.pending.sweep() == 1  # claimed records go whatever their age
    assert not runtime.storage.exists("cdn/half.bin")
    assert pending_keys(runtime) == []


def test_discard_removes_bytes_and_record(runtime: Runtime) -> None:
    commit_bytes(runtime, "images/d.png")
    runtime.pending.discard("images/d.png")
    assert not runtime.storage.exists("images/d.png")
    assert pending_keys(runtime) == []


def test_bytes_that_cannot_be_discarded_stay_recorded_for_the_sweep(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    commit_bytes(runtime, "images/e.png")

    def refuse(key: str) -> bool:
        raise StorageError("the disk said no")

    clock = runtime.clock
    assert isinstance(clock, FakeClock)
    with monkeypatch.context() as patched:
        patched.setattr(runtime.storage, "delete", refuse)
        runtime.pending.discard("images/e.png")
        assert pending_keys(runtime) == ["images/e.png"]
        clock.advance(SWEEP_AGE + 1)
        assert runtime.pending.sweep() == 0
        assert pending_keys(runtime) == ["images/e.png"]  # kept for the next sweep
    assert runtime.pending.sweep() == 1  # at once: the record kept its age
    assert not runtime.storage.exists("images/e.png")


def test_a_failed_byte_commit_leaves_no_record(runtime: Runtime) -> None:
    commit_bytes(runtime, "cdn/taken.bin")
    writer = runtime.storage.writer()
    writer.write(b"other")
    with pytest.raises(StorageError):
        runtime.pending.commit(writer, "cdn/taken.bin")  # already pending
    assert writer.aborted
    with runtime.db.write():
        runtime.pending.settle("cdn/taken.bin")
    writer = runtime.storage.writer()
    writer.write(b"other")
    with pytest.raises(StorageError):
        runtime.pending.commit(writer, "cdn/taken.bin")  # the object exists
    assert pending_keys(runtime) == []
    assert runtime.storage.open("cdn/taken.bin").read() == b"bytes\n"


def test_condemned_bytes_are_open_to_the_next_sweep(runtime: Runtime) -> None:
    commit_bytes(runtime, "cdn/gone.bin")
    with runtime.db.write():
        runtime.pending.settle("cdn/gone.bin")
    with pytest.raises(RuntimeError):
        runtime.pending.condemn("cdn/gone.bin")  # only with the row's delete
    with runtime.db.write():
        runtime.pending.condemn("cdn/gone.bin")
    assert runtime.pending.sweep() == 1  # not an hour later: at once
    assert not runtime.storage.exists("cdn/gone.bin")
    assert pending_keys(runtime) == []


def test_the_sweep_is_a_job(runtime: Runtime) -> None:
    assert SWEEP_JOB in runtime.jobs.names
    commit_bytes(runtime, "cdn/late.bin")
    assert isinstance(runtime.clock, FakeClock)
    runtime.clock.advance(SWEEP_AGE + 1)
    runtime.jobs.run(SWEEP_JOB)
    assert not runtime.storage.exists("cdn/late.bin")


# --- killed servers -----------------------------------------------------------------


DYING_FACTORY = textwrap.dedent('''
    """An app whose storage kills its process right after an upload's bytes are
    committed, or right before a deleted upload's bytes are removed, while a
    marker file exists: as if the worker died there."""
    import os
    import signal

    import hepcore
    from hepcore import hookimpl, load_config
    from hepcore.storage import LocalStorage
    from hepcore.web.entry import prepare_serving


    class DyingStorage(LocalStorage):
        def writer(self, *, max_size=None):
            writer = super().writer(max_size=max_size)
            commit = writer._commit

            def commit_then_die(key):
                commit(key)
                if os.path.exists(os.environ["DIE_AFTER_COMMIT"]):
                    os.kill(os.getpid(), signal.SIGKILL)

            writer._commit = commit_then_die
            return writer

        def delete(self, key):
            if os.path.exists(os.environ["DIE_BEFORE_DELETE"]):
                os.kill(os.getpid(), signal.SIGKILL)
            return super().delete(key)


    class Plugin:
        @hookimpl
        def hepcore_storage_backends(self, config):
            return {"dying": lambda config: DyingStorage(config.data_dir / "files")}


    def make_app(asgi=False):
        return prepare_serving(hepcore.create_app(load_config(), asgi=asgi,
                                                  plugins=[Plugin()]))
''')


@pytest.fixture(scope="module")
def dying_host(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(data directory, app directory, keys): every service, the dying storage."""
    data = tmp_path_factory.mktemp("dying")
    apps = tmp_path_factory.mktemp("dying-app")
    (apps / "dying_app.py").write_text(DYING_FACTORY)

    def last_line(*args: str) -> str:
        code, out = cli(data, *args)
        assert code == 0, out
        return out.strip().splitlines()[-1]

    last_line("init")
    last_line("accounts", "create", "fay")
    keys = {service: last_line("keys", "create", "--service", service, "--account", "fay")
            for service in ("uploader", "paste", "images")}
    last_line("cdn", "quota", "--account", "fay", "--tier", "verified")
    keys["cdn"] = last_line("cdn", "key", "--account", "fay", "--name", "dying").split()[-1]
    return data, apps, keys


def noise_png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (16, 16), os.urandom(16 * 16 * 3)).save(out, "PNG")
    return out.getvalue()


def send(url: str, service: str, key: str) -> None:
    """An upload to ``service``; its process dies before answering."""
    bearer = {"Authorization": f"Bearer {key}"}
    with pytest.raises(requests.ConnectionError):
        if service == "uploader":
            requests.post(url + "/upload", headers={"Authorization": key}, timeout=30, files={
                "file": ("a.bin", secrets.token_bytes(2048), "application/x-test")})
        elif service == "cdn":
            requests.post(url + "/cdn/api/v4/upload", headers=bearer, timeout=30, files={
                "file": ("b.bin", secrets.token_bytes(2048), "application/x-test")})
        elif service == "images":
            requests.post(url + "/img/api/v1/upload", headers=bearer, timeout=30,
                          files={"file": ("c.png", noise_png(), "image/png")})
        else:  # a paste large enough to be stored as an object
            requests.post(url + "/paste/api/paste", headers=bearer, timeout=30,
                          json={"content": "spilled line\n" * 10_000, "language": "text"})


@pytest.mark.integration
@pytest.mark.parametrize("service", ["uploader", "cdn", "images", "paste"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_bytes_of_a_process_killed_before_its_row_are_swept(
        dying_host: tuple[Path, Path, dict[str, str]], tmp_path: Path,
        kind: str, service: str) -> None:
    data, apps, keys = dying_host
    toml = data / "hepcore.toml"
    config = toml.read_text()
    toml.write_text(config.replace('backend = "local"', 'backend = "dying"'))
    marker = tmp_path / "die"
    marker.touch()
    before = set(load_objects(data))
    with run_server(data, kind, factory="dying_app:make_app", app_dir=str(apps),
                    extra_env={"DIE_AFTER_COMMIT": str(marker),
                               "DIE_BEFORE_DELETE": str(tmp_path / "never")}) as server:
        send(server.url, service, keys[service])
    toml.write_text(config)

    left = sorted(set(load_objects(data)) - before)
    assert len(left) == 1 and left[0].startswith(f"{service}/"), left
    # Not a fault for `check`: recorded as pending, so the sweep will take it.
    code, out = cli(data, "check")
    assert code == 0, out
    assert f"pending object: {left[0]}" in out
    # A host started more than an hour later sweeps it; nothing else goes.
    runtime = build_runtime(load_config(data), clock=FakeClock(
        float(os.stat(data / "files" / left[0]).st_mtime) + SWEEP_AGE + 60))
    try:
        assert runtime.pending.keys() == []
        assert sorted(set(runtime.storage.keys()) - before) == []
    finally:
        runtime.close()
    code, out = cli(data, "check")
    assert code == 0 and "pending object" not in out, out


@pytest.mark.integration
@pytest.mark.parametrize("service", ["uploader", "cdn"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_bytes_of_a_delete_whose_process_was_killed_are_swept(
        dying_host: tuple[Path, Path, dict[str, str]], tmp_path: Path,
        kind: str, service: str) -> None:
    """The row is gone, the process dies before removing the bytes: the next
    start-up removes them (they were condemned with the row)."""
    data, apps, keys = dying_host
    toml = data / "hepcore.toml"
    config = toml.read_text()
    toml.write_text(config.replace('backend = "local"', 'backend = "dying"'))
    marker = tmp_path / "die"
    key = keys[service]
    with run_server(data, kind, factory="dying_app:make_app", app_dir=str(apps),
                    extra_env={"DIE_AFTER_COMMIT": str(tmp_path / "never"),
                               "DIE_BEFORE_DELETE": str(marker)}) as server:
        before = set(load_objects(data))
        if service == "uploader":
            reply = requests.post(server.url + "/upload", headers={"Authorization": key},
                                  files={"file": ("d.bin", b"doomed\n", "text/plain")},
                                  timeout=30)
            path = f"/api/v1/uploads/{reply.json()['ID']}"
            headers = {"Authorization": key}
        else:
            headers = {"Authorization": f"Bearer {key}"}
            reply = requests.post(server.url + "/cdn/api/v4/upload", headers=headers,
                                  files={"file": ("d.bin", b"doomed\n", "text/plain")},
                                  timeout=30)
            path = f"/cdn/api/v4/upload/{reply.json()['id']}"
        assert reply.status_code in (200, 201), reply.text
        [stored] = sorted(set(load_objects(data)) - before)
        marker.touch()
        with pytest.raises(requests.ConnectionError):
            requests.delete(server.url + path, headers=headers, timeout=30)
    toml.write_text(config)

    assert (data / "files" / stored).exists()
    code, out = cli(data, "check")  # a start-up: its sweep takes the condemned bytes
    assert code == 0 and "pending object" not in out, out
    assert not (data / "files" / stored).exists()


def load_objects(data: Path) -> list[str]:
    root = data / "files"
    if not root.exists():
        return []
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and ".tmp" not in p.parts]


def test_check_repair_sweeps_pending_objects_after_its_grace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runtime = build_runtime(load_config(data))
    try:
        commit_bytes(runtime, "uploader/dead.bin")
    finally:
        runtime.close()
    code, out = cli(data, "check")
    assert code == 0 and "pending object: uploader/dead.bin" in out, out
    code, out = cli(data, "check", "--repair", "--grace", "0")
    assert code == 0 and "swept 1 pending objects" in out, out
    code, out = cli(data, "check")
    assert code == 0 and "pending" not in out and not (data / "files/uploader/dead.bin").exists()
