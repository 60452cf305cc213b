"""No thread races pytest over os.environ (issue 19 §3): the clients the suite uses from background threads
(HTTP probes, the Docker Engine client, the S3 client, a command's environment) never iterate os.environ
there, while the stock ways of making them do. Each is tried in a thread under tests/environ_watch.py, against
a small HTTP server in this process (127.0.0.1, an ephemeral port): nothing else needs to run."""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import docker
import requests
from botocore.config import Config

import environ_watch
from runbook import client_env, commands
from runbook.components.compose import _Engine, engine_settings
from runbook.probes import http as http_probe


class _Answer(BaseHTTPRequestHandler):
    """200 to everything; the Docker Engine's /version and container list; quiet."""

    def _reply(self, body: bytes = b"{}") -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.path.endswith("/version"):
            return self._reply(json.dumps({"ApiVersion": "1.41", "Version": "20.10"}).encode())
        if "/containers/json" in self.path:
            return self._reply(b"[]")
        return self._reply()

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@contextmanager
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=srv.serve_forever, daemon=True, name="answer-server").start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def in_thread(fn) -> list[dict]:
    """Run fn in a thread of its own under the watch; what that thread did to os.environ."""
    errors = []

    def body():
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - said by the assertion below
            errors.append(exc)
    environ_watch.install()
    try:
        t = threading.Thread(target=body, name="under-watch")
        t.start()
        t.join(20)
    finally:
        record = environ_watch.uninstall()
    assert not errors, errors
    return [x for x in record["touches"] if x["thread"] == "under-watch"]


def iterations(touches: list[dict]) -> list[dict]:
    return [x for x in touches if x["kind"] != "read"]


def test_the_watch_sees_a_thread_iterate_and_pytests_thread_write():
    environ_watch.install()
    try:
        os.environ["MESH_WATCH_UNIT"] = "1"
        t = threading.Thread(target=lambda: dict(os.environ), name="copier")
        t.start()
        t.join()
        del os.environ["MESH_WATCH_UNIT"]
    finally:
        record = environ_watch.uninstall()
    assert type(os.environ) is os._Environ   # noqa: SLF001 - the watch leaves nothing behind
    assert "MESH_WATCH_UNIT" in record["written_by_pytest"]
    assert any(x["kind"] == "iterate" and x["thread"] == "copier" for x in record["touches"])


def test_requests_own_lookup_iterates_in_a_thread_the_probes_do_not():
    with server() as where:
        url = f"http://{where}/health"
        assert iterations(in_thread(lambda: requests.get(url, timeout=2))), "requests' proxy lookup was not seen"
        ours = in_thread(lambda: http_probe.get(url, 2.0))
    assert ours == [], ours


def test_the_engine_client_made_and_used_in_a_thread_never_iterates():
    with server() as where:
        settings = engine_settings(f"tcp://{where}")
        stock = in_thread(lambda: docker.DockerClient(**settings, timeout=2).containers.list(all=True))
        assert iterations(stock), "docker-py's requests session was expected to look up proxies"
        ours = in_thread(lambda: _Engine(**settings, timeout=2).containers.list(all=True))
    # docker-py reads where its config.json is (DOCKER_CONFIG, HOME) when a client is made: single lookups
    assert iterations(ours) == [], ours
    assert {x["key"] for x in ours} <= {"DOCKER_CONFIG", "HOME"}, ours


BOTOCORE_PER_REQUEST = {"AWS_LAMBDA_FUNCTION_NAME", "_X_AMZN_TRACE_ID", "BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER"}


def _s3(where: str):
    return boto3.client("s3", endpoint_url=f"http://{where}", region_name="us-east-1", aws_access_key_id="k",
                        aws_secret_access_key="s", config=Config(connect_timeout=2, read_timeout=2,
                                                                 retries={"max_attempts": 1}))


def test_an_s3_client_made_in_the_main_thread_is_used_from_a_thread_without_iterating():
    with server() as where:
        assert iterations(in_thread(lambda: _s3(where))), "making a botocore client looks up proxies"
        client = _s3(where)   # here, the main thread: as runbook/reachability.py does
        used = in_thread(lambda: client.head_bucket(Bucket="b"))
    assert iterations(used) == [], used
    # botocore asks a few variables by name per request (the Lambda trace id, an experimental proxy header):
    # single lookups, which cannot meet a key that vanished between listing and reading
    assert {x["key"] for x in used} <= BOTOCORE_PER_REQUEST, used


def test_a_command_run_from_a_thread_gets_the_start_up_copy():
    ran = []
    touches = in_thread(lambda: ran.append(commands.run(["true"], timeout=5, env={"X_MESH": "1"})))
    assert ran and ran[0].ok
    assert touches == [], touches


def test_the_proxy_settings_are_taken_once_and_honour_no_proxy():
    s = client_env.http_settings({"HTTPS_PROXY": "http://proxy:3128", "http_proxy": "http://p2:8080",
                                  "NO_PROXY": "localhost,.internal.example,10.0.0.1:8443", "CURL_CA_BUNDLE": "/ca.pem"})
    assert s.proxies_for("https://api.example.com/x") == {"https": "http://proxy:3128"}
    assert s.proxies_for("http://api.example.com/x") == {"http": "http://p2:8080"}
    assert s.proxies_for("http://localhost:9090/") == {}
    assert s.proxies_for("https://s3.internal.example/b") == {}
    assert s.proxies_for("https://internal.example/b") == {}
    assert s.proxies_for("https://10.0.0.1:8443/") == {} and s.proxies_for("https://10.0.0.1:9443/") != {}
    assert s.ca_bundle == "/ca.pem"
    assert client_env.http_settings({"ALL_PROXY": "http://a:1", "no_proxy": "*"}).proxies_for("http://x/") == {}
    assert client_env.http_settings({}).proxies_for("http://x/") == {}
    session = client_env.session()
    assert session.trust_env is False


def _race(loop_body, seconds: float = 1.5) -> tuple[int, int]:
    """loop_body in a thread for `seconds` while this thread sets and deletes a key as pytest does around
    each test: (calls, KeyErrors)."""
    stop, counts = threading.Event(), [0, 0]

    def body():
        while not stop.is_set():
            try:
                loop_body()
            except KeyError:
                counts[1] += 1
            counts[0] += 1
    t = threading.Thread(target=body, name="racer")
    t.start()
    start = time.monotonic()

    def going_on() -> bool:   # until the first KeyError, or `seconds` and at least 50 calls (5 s more at most)
        elapsed = time.monotonic() - start
        return counts[1] == 0 and (elapsed < seconds or (counts[0] < 50 and elapsed < seconds + 5))
    while going_on():
        os.environ["MESH_PYTEST_CURRENT_TEST_LIKE"] = "x"
        del os.environ["MESH_PYTEST_CURRENT_TEST_LIKE"]
    stop.set()
    t.join(10)
    return counts[0], counts[1]


def test_the_race_is_real_and_the_probes_are_out_of_it():
    """The mechanism behind the false reds: urllib's proxy lookup (what requests and botocore call) iterates
    os.environ and meets a key deleted meanwhile. The suite's HTTP probe, in the same churn, never does."""
    import urllib.request
    calls, key_errors = _race(urllib.request.getproxies)
    assert key_errors > 0, f"{calls} lookups met no deleted key: the churn did not reach the thread"
    with server() as where:
        url = f"http://{where}/health"
        calls, key_errors = _race(lambda: http_probe.get(url, 2.0))
    assert calls >= 50 and key_errors == 0, (calls, key_errors)
