"""A pytest plugin that watches os.environ for the run: `-p tests.environ_watch`, with MESH_ENVIRON_WATCH=PATH
in the environment; at the end it writes PATH (PATH-<worker> under xdist) as JSON.

Why (issue 19 §3): pytest sets and deletes PYTEST_CURRENT_TEST around every test, from its own thread. A
background thread that iterates os.environ meanwhile (requests' proxy lookup, a `{**os.environ}` copy) lists
the keys, then reads one that is gone: KeyError on every check that thread served. This plugin records, for
every thread other than pytest's, each read, iteration and write of os.environ with where it came from, and
which keys pytest's thread wrote: tests/test_environ_threads.py judges the record.

The class of the one os.environ object is swapped (not the module attribute), so references taken before the
swap (`environ=os.environ` default arguments) are watched too. Nothing changes what a read returns."""
from __future__ import annotations

import json
import os
import threading
import traceback

import pytest

SELFTEST_KEY = "MESH_ENVIRON_WATCH_SELFTEST"   # read by a thread at start: proves the watch sees threads

_pytest_thread: int | None = None
_touches: list[dict] = []
_written_by_pytest: set[str] = set()
_busy = threading.local()   # no recording while recording (formatting a stack must not recurse)


def _where() -> list[str]:
    frames = traceback.extract_stack(limit=40)[:-3]   # drop this module's frames
    return [f"{os.path.relpath(f.filename) if 'site-packages' not in f.filename else f.filename.split('site-packages/')[-1]}"
            f":{f.lineno} {f.name}" for f in frames[-14:]]


def _touch(kind: str, key: str) -> None:
    if getattr(_busy, "on", False):
        return
    if threading.get_ident() == _pytest_thread:
        if kind == "write":
            _written_by_pytest.add(key)
        return
    _busy.on = True
    try:
        _touches.append({"kind": kind, "key": key, "thread": threading.current_thread().name, "where": _where()})
    finally:
        _busy.on = False


class WatchedEnviron(os._Environ):   # noqa: SLF001 - the class of os.environ, extended by recording only
    def __getitem__(self, key):
        _touch("read", key)
        return super().__getitem__(key)

    def __iter__(self):
        _touch("iterate", "*")
        return super().__iter__()

    def __len__(self):
        _touch("iterate", "*")
        return super().__len__()

    def __setitem__(self, key, value):
        _touch("write", key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        _touch("write", key)
        super().__delitem__(key)

    def copy(self):
        _touch("iterate", "*")
        return super().copy()


def install() -> None:
    global _pytest_thread
    _pytest_thread = threading.get_ident()
    _touches.clear()
    _written_by_pytest.clear()
    os.environ.__class__ = WatchedEnviron


def uninstall() -> dict:
    os.environ.__class__ = os._Environ   # noqa: SLF001
    return {"pid": os.getpid(), "written_by_pytest": sorted(_written_by_pytest), "touches": list(_touches)}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    install()
    probe = threading.Thread(target=lambda: os.environ.get(SELFTEST_KEY), name="environ-watch-selftest")
    probe.start()
    probe.join()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    record = uninstall()
    path = os.environ.get("MESH_ENVIRON_WATCH")
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        with open(f"{path}-{worker}" if worker else path, "w") as out:
            json.dump(record, out, indent=1)
