"""A check never ends in a traceback: under each real fault the whole read-only selection runs, and every
outcome is a verdict (passed, failed with a message, skipped), never an error, and no failure message holds
a Python exception (TypeError, KeyError, ...) or a client library's exception class instead of a sentence.
About a minute in all: most of it is the faults undoing themselves."""
from __future__ import annotations

import re

import pytest

import faults
from harness import run_suite

pytestmark = pytest.mark.faults

READ_ONLY = "daily or health or services or database or monitoring or capacity"
CRASH = re.compile(r"\b(TypeError|KeyError|AttributeError|IndexError|ValueError|NameError|ZeroDivisionError|"
                   r"UnboundLocalError|StopIteration|RecursionError|NotImplementedError)\b|Traceback|"
                   r"psycopg\.errors\.|psycopg\.OperationalError|redis\.exceptions\.|docker\.errors\.|"
                   r"requests\.exceptions\.|urllib3\.exceptions\.")

FAULTS = {
    "redis stopped": lambda: faults.container_stopped("redis"),
    "primary stopped": lambda: faults.postgres_stopped("primary"),
    "standby promoted": faults.standby_promoted,
    "worker stopped": lambda: faults.container_stopped("worker"),
    "prometheus stopped": lambda: faults.container_stopped("prometheus"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_read_only_check_ends_in_a_verdict(healthy, tmp_path, fault):
    with FAULTS[fault]():
        run = run_suite(["checks", "-m", READ_ONLY], tmp_path, timeout=150)
    faults.rates_again()
    assert len(run.results) >= 50, f"{fault}: only {len(run.results)} checks ran\n{run.output[-3000:]}"
    assert any(outcome == "failed" for outcome, _ in run.results.values()), f"{fault}: nothing went red"
    errors = {name: message[:300] for name, (outcome, message) in run.results.items() if outcome == "error"}
    crashed = {name: f"{match.group(0)}: {message[:300]}" for name, (outcome, message) in run.results.items()
               if outcome == "failed" and (match := CRASH.search(message))}
    assert not errors and not crashed, f"{fault}: errors {errors}; crashes {crashed}"
