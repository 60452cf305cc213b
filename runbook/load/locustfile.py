"""The runbook's k6 scenario on Locust: each user creates a context with the API key, then sleeps 1 s.
Run by runbook/components/locust.py (master and workers); configured through the environment, so the API
key never appears on a command line (`ps` shows those):

  MESH_LOAD_DIR     where each worker writes samples-<pid>.csv and the master writes `started`
  MESH_LOAD_STAGES  JSON [[seconds, users], ...]   MESH_LOAD_THINK  seconds between a user's requests
  MESH_LOAD_RUN     the run id every created context is tagged with (metadata.run)
  MESH_LOAD_API_KEY the X-API-Key              MESH_LOAD_GET  a path to GET instead (bench/load_ceiling.py)

Differences from the runbook's script: it posts `content` as a string, which the API binds to an array of
messages (developer-mesh-contract.md section 7) and answers 400; here it is one message. Every context is
tagged metadata {"source": "mesh-runbook-load", "run": <id>} so the procedure removes exactly what it made."""
from __future__ import annotations

import itertools
import json
import os
import time

from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.runners import MasterRunner

from runbook.load import SOURCE_TAG
from runbook.load.profiles import Profile, Stage

OUT = os.environ.get("MESH_LOAD_DIR", ".")
RUN = os.environ.get("MESH_LOAD_RUN", "unset")
GET_PATH = os.environ.get("MESH_LOAD_GET")
PROFILE = Profile("env", tuple(Stage(float(s), int(u)) for s, u in json.loads(os.environ.get("MESH_LOAD_STAGES",
                                                                                             "[[10, 1]]"))),
                  workers=0, think_seconds=float(os.environ.get("MESH_LOAD_THINK", "1")))
_out = {"fh": None}
_users = itertools.count(1)


@events.init.add_listener
def _open_samples(environment, **_):
    # one file per worker process: no locking across processes, and a worker's death loses only its tail
    if not isinstance(environment.runner, MasterRunner):
        _out["fh"] = open(os.path.join(OUT, f"samples-{os.getpid()}.csv"), "a", buffering=1 << 16)


@events.request.add_listener
def _record(response_time, exception=None, response=None, start_time=None, **_):
    fh = _out["fh"]
    if fh is None:
        return
    code = getattr(response, "status_code", 0) or 0
    status = str(code) if code else type(exception).__name__ if exception else "0"
    fh.write(f"{start_time or time.time() - response_time / 1000:.6f},{response_time:.3f},"
             f"{0 if exception else 1},{status}\n")


@events.test_stop.add_listener
@events.quitting.add_listener
def _flush(**_):
    if _out["fh"] is not None:
        _out["fh"].flush()


class ContextCreator(FastHttpUser):
    wait_time = constant(PROFILE.think_seconds)

    def on_start(self):
        self.user_no, self.iteration = next(_users), itertools.count()
        self.headers = {"Content-Type": "application/json", "X-API-Key": os.environ.get("MESH_LOAD_API_KEY", "")}

    @task
    def create_context(self):
        if GET_PATH:
            self.client.get(GET_PATH, name=GET_PATH)
            return
        body = {"name": f"perf-test-{os.getpid()}-{self.user_no}-{next(self.iteration)}",
                "content": [{"role": "user", "content": "Performance test context"}],
                "metadata": {"source": SOURCE_TAG, "run": RUN}}
        with self.client.post("/api/v1/contexts", json=body, headers=self.headers, name="POST /api/v1/contexts",
                              catch_response=True) as resp:
            if resp.status_code != 201:   # the k6 check 'context created'
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:120]}")


class RunbookStages(LoadTestShape):
    """The stages from MESH_LOAD_STAGES; runs on the master. Its first tick records when the run started,
    which is what the judged window (Profile.judged_window) is measured from."""
    _marked = False

    def tick(self):
        if not self._marked:
            with open(os.path.join(OUT, "started"), "w") as fh:
                # start_time is perf_counter(); the samples carry epoch seconds
                fh.write(f"{time.time() - self.get_run_time():.6f}\n")
            self._marked = True
        return PROFILE.at(self.get_run_time())
