"""Operations on a host's data: online backups, restores and consistency checks.

A backup is a directory: ``hepcore.db`` (a consistent snapshot taken with
SQLite's online backup API while the host keeps writing), ``files/`` (every
stored object, by key), the host's ``hepcore.toml`` and ``secret`` when
present, and ``manifest.json``. Services commit an upload's bytes before its
row, so every row in the snapshot has its bytes in storage when the files are
copied afterwards; a file that arrives in between is copied without a row
and shows up as an orphan in ``hepcore check``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import CONFIG_FILE, SECRET_FILE
from .db import create_private
from .errors import ConfigError

if TYPE_CHECKING:
    from .runtime import Runtime

MANIFEST = "manifest.json"
DATABASE = "hepcore.db"
FILES = "files"
FORMAT = 1
COPY_BLOCK = 1024 * 1024


@dataclass
class BackupReport:
    path: Path
    files: int = 0
    bytes: int = 0
    vanished: list[str] = field(default_factory=list)  # deleted while the backup ran


def backup(runtime: Runtime, dest: Path) -> BackupReport:
    """Copy the host's database and stored objects into the new directory ``dest``.

    Safe while the host serves. ``dest`` must not exist; the copy is built
    beside it and renamed into place only when complete, so a failed backup
    leaves no directory that looks like a good one.
    """
    dest = Path(dest)
    if dest.exists():
        raise ConfigError(f"{dest} already exists; a backup goes into a new directory")
    work = dest.with_name(dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)  # as private as the data directory
    try:
        report = BackupReport(dest)
        _snapshot_database(runtime.config.database_path, work / DATABASE)
        storage = runtime.storage
        for key in sorted(storage.keys()):
            target = work / FILES / key
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with storage.open(key) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, COPY_BLOCK)
                    out.flush()
                    os.fsync(out.fileno())
            except FileNotFoundError:
                report.vanished.append(key)
                target.unlink(missing_ok=True)
                continue
            report.files += 1
            report.bytes += target.stat().st_size
        data_dir = runtime.config.data_dir
        for name in (CONFIG_FILE, SECRET_FILE):
            if (data_dir / name).exists():
                shutil.copy2(data_dir / name, work / name)
        for name in (CONFIG_FILE, SECRET_FILE):
            if (work / name).exists():
                os.chmod(work / name, 0o600)
        (work / MANIFEST).write_text(json.dumps({
            "format": FORMAT, "created_at": time.time(), "files": report.files,
            "bytes": report.bytes}, indent=2) + "\n")
        _fsync_tree(work)
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _snapshot_database(source: Path, target: Path) -> None:
    create_private(target)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        # One step (pages=-1) copies the whole database under one read transaction:
        # a consistent snapshot even while other connections write.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(src: Path) -> dict[str, object]:
    """The manifest of the backup in ``src``; :class:`ConfigError` when it is not one."""
    try:
        manifest = json.loads((Path(src) / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{src} is not a hepcore backup (no readable {MANIFEST})") from exc
    if manifest.get("format") != FORMAT or not (Path(src) / DATABASE).is_file():
        raise ConfigError(f"{src} is not a hepcore backup of a format this version reads")
    return dict(manifest)


def restore(src: Path, data_dir: Path, *, force: bool = False) -> int:
    """Restore the backup in ``src`` into ``data_dir`` (the host must be stopped).

    Refuses a data directory that already holds a database unless ``force``.
    The configuration and secret come back first, then every object through
    the configured storage backend, and the database last, by rename, so an
    interrupted restore never leaves a database pointing at missing files.
    Migrations of a newer hepcore apply at the next start. Returns the number
    of objects restored.
    """
    from .config import load_config
    from .runtime import build_runtime

    src, data_dir = Path(src), Path(data_dir)
    read_manifest(src)
    db_path = data_dir / DATABASE
    if db_path.exists() and not force:
        raise ConfigError(f"{data_dir} already has a database; stop the host and pass --force")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (CONFIG_FILE, SECRET_FILE):
        if (src / name).exists():
            shutil.copy2(src / name, data_dir / name)
    config = load_config(data_dir)
    root = config.storage_options.get("root")
    if config.storage_backend == "local" and root and not force:
        resolved = (data_dir / root).resolve()
        if not resolved.is_relative_to(data_dir.resolve()):
            raise ConfigError(
                f"the backup's storage root {resolved} is outside {data_dir}: restoring would"
                " write into that storage (a live host's?); pass --force if that is intended")
    restored = 0
    fresh = not db_path.exists()
    try:
        # The runtime gives the configured storage backend (and creates an
        # empty database where there was none, replaced below).
        runtime = build_runtime(config)
        try:
            files = src / FILES
            for path in sorted(files.rglob("*")) if files.exists() else []:
                if path.is_file():
                    key = path.relative_to(files).as_posix()
                    runtime.storage.delete(key)  # --force over a host that has it already
                    with open(path, "rb") as fh:
                        runtime.storage.put(key, iter(lambda: fh.read(COPY_BLOCK), b""))
                    restored += 1
        finally:
            runtime.close()
    except BaseException:
        if fresh:  # never leave an empty database that looks like a restored host
            for suffix in ("", "-wal", "-shm"):
                (data_dir / (DATABASE + suffix)).unlink(missing_ok=True)
        raise
    tmp_db = data_dir / (DATABASE + ".restoring")
    tmp_db.unlink(missing_ok=True)
    create_private(tmp_db)
    shutil.copyfile(src / DATABASE, tmp_db)
    with open(tmp_db, "rb") as fh:
        os.fsync(fh.fileno())
    for suffix in ("-wal", "-shm"):
        (data_dir / (DATABASE + suffix)).unlink(missing_ok=True)
    os.replace(tmp_db, db_path)
    _fsync_tree(data_dir)
    return restored


@dataclass
class CheckReport:
    """What ``hepcore check`` found: rows without bytes, bytes without rows."""

    objects: int = 0
    referenced: int = 0
    missing: dict[str, list[str]] = field(default_factory=dict)  # service -> keys
    orphans: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # orphans the sweep will remove
    unowned: list[str] = field(default_factory=list)  # outside every service's prefix
    removed_orphans: int = 0
    swept_pending: int = 0
    forgotten_rows: int = 0

    @property
    def clean(self) -> bool:
        return not self.orphans and not any(self.missing.values())


def check(runtime: Runtime, *, repair: bool = False, grace: float = 30.0) -> CheckReport:
    """Compare every service's stored-object references with the storage.

    A service owns the keys under ``<service name>/``. With ``repair``,
    orphan objects are deleted (after ``grace`` seconds and a second look, so
    an upload between its byte commit and its row commit is not taken for an
    orphan) and each service drops its rows whose bytes are gone. Objects
    still recorded as pending (:mod:`hepcore.pending`: a write in progress, or
    one whose process died) are reported apart and are not a fault: the sweep
    removes them after an hour, ``repair`` after ``grace``. Keys outside
    every service's prefix are reported, never deleted. On a live host a row
    deleted meanwhile is not reported as missing bytes (a second look).
    """
    report = CheckReport()
    # References first: an upload landing in between then shows as an orphan
    # (its bytes are committed before its row), never as missing bytes.
    refs = _references(runtime)
    keys = set(runtime.storage.keys())
    report.objects = len(keys)
    report.referenced = sum(len(r) for r in refs.values())
    owned: set[str] = set()
    for name, service_refs in refs.items():
        prefix = f"{name}/"
        mine = {k for k in keys if k.startswith(prefix)}
        owned |= mine
        report.missing[name] = sorted(service_refs - keys)
        report.orphans.extend(sorted(mine - service_refs))
    report.unowned = sorted(keys - owned)
    pending = set(runtime.pending.keys())
    report.pending = [k for k in report.orphans if k in pending]
    report.orphans = [k for k in report.orphans if k not in pending]
    if any(report.missing.values()):
        # A delete between the two reads (row, then bytes) looks like missing
        # bytes; a second look at the references drops it.
        again = _references(runtime)
        for name, missing in report.missing.items():
            report.missing[name] = [k for k in missing if k in again.get(name, set())
                                    and not runtime.storage.exists(k)]
    if not repair:
        return report
    if report.pending or report.orphans:
        time.sleep(grace)
    if report.pending:
        # Takes each record before deleting its bytes: a write still in
        # progress then fails cleanly instead of committing a row without bytes.
        report.swept_pending = runtime.pending.sweep(older_than=grace)
    if report.orphans:
        again = _references(runtime)
        for key in report.orphans:
            service = key.split("/", 1)[0]
            if key not in again.get(service, set()) and runtime.storage.delete(key):
                report.removed_orphans += 1
    for name, missing in report.missing.items():
        if missing:
            still = {k for k in missing if not runtime.storage.exists(k)}
            report.forgotten_rows += runtime.services[name].forget_objects(still)
    return report


def _references(runtime: Runtime) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, service in runtime.services.items():
        keys: Iterable[str] = service.stored_objects()
        out[name] = set(keys)
    return out
