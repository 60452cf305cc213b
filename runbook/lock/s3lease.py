"""A lease in the target's S3 bucket: the object `locks/<target>.json` (holder, token, lease length), created
with `If-None-Match: *` so that of two runners exactly one creates it; renewed every third of its length with
`If-Match: <our ETag>`; deleted on release with `If-Match` too, so we never delete a lease that is no longer
ours. A lease not renewed for longer than its length (its holder died or was cut off) is taken over with
`If-Match: <its ETag>`, and the attempt says so.

A store that ignores conditional writes would let both runners "create" the lease: each time, before taking
it, a probe object is written twice with `If-None-Match: *` (the second must fail with 412) and once with a
wrong `If-Match` (must fail with 412). A store that does not (s3rver, the sandbox's) is "not used", with that
reason, never trusted. Real S3 and moto's server honour both.

Age is judged by the store's clock (its Date header against the object's LastModified), so two machines with
different clocks agree on whether a lease is stale. The client is the component's (mesh.s3.client), made
before the renewal thread starts; the thread only sends requests."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable

from . import Attempt

LEASE_SECONDS = 300.0   # a crashed holder keeps the target at most this long after its last renewal
WRONG_ETAG = '"00000000000000000000000000000000"'


class S3Lease:
    def __init__(self, client: Callable[[], Any], bucket: str, where: str, seconds: float = LEASE_SECONDS):
        self.name = f"S3 lease in s3://{bucket}/locks/ at {where}"
        self._client, self.bucket, self.seconds = client, bucket, seconds

    def take(self, stack: ExitStack, target_name: str, holder: dict, notes: list[str]) -> Attempt:
        key = f"locks/{target_name}.json"
        body = {"target": target_name, **holder, "pid": os.getpid(), "token": uuid.uuid4().hex,
                "seconds": self.seconds}
        try:
            client = self._client()
            why_not = probe(client, self.bucket, target_name)
            if why_not:
                return Attempt(self.name, "unavailable", why_not)
            etag, took_over = self._create(client, key, body)
        except _Held as held:
            return Attempt(self.name, "held", str(held))
        except Exception as exc:  # no answer, no credentials, no bucket: said in the audit line
            said = f"the store answered {_status(exc)} {_code(exc)}" if _status(exc) else "no answer"
            return Attempt(self.name, "unavailable", f"{said}: {_first_line(exc)}")
        renewal = _Renewal(client, self.bucket, key, body, etag, self.seconds, notes)
        renewal.start()
        stack.callback(renewal.release)
        return Attempt(self.name, "taken", took_over)

    def _create(self, client, key: str, body: dict) -> tuple[str, str]:
        """(our ETag, "" or what was taken over). Raises _Held when someone else holds a live lease."""
        for _ in range(2):   # a lease deleted between our PUT and our GET: create again, once
            try:
                return _put(client, self.bucket, key, body, IfNoneMatch="*"), ""
            except Exception as exc:
                if _code(exc) == "ConditionalRequestConflict":   # S3's 409: a conditional write in flight
                    raise _Held("another runner creating the lease at this very moment") from None
                if not _precondition(exc):
                    raise
            current = read(client, self.bucket, key)
            if current is None:
                continue
            data, etag, age = current
            length = float(data.get("seconds") or self.seconds)
            if age <= length:
                raise _Held(f"{describe(data)}; renewed {age:.0f}s ago, stale after {length:.0f}s")
            try:
                ours = _put(client, self.bucket, key, body, IfMatch=etag)
            except Exception as exc:
                if _precondition(exc) or _code(exc) == "ConditionalRequestConflict":
                    raise _Held("another runner taking over the same stale lease at this very moment") from None
                raise
            return ours, (f"took over a stale lease of {describe(data)}: not renewed for {age:.0f}s, longer "
                          f"than its {length:.0f}s (its holder died or was cut off from the store)")
        raise _Held("a lease that keeps appearing and disappearing (try again)")


class _Held(Exception):
    pass


def probe(client, bucket: str, target_name: str) -> str | None:
    """None when the store honours If-None-Match and If-Match on PUT; otherwise why the lease cannot be trusted."""
    key = f"locks/{target_name}.probe-{uuid.uuid4().hex}.json"
    try:
        _put(client, bucket, key, {"probe": True}, IfNoneMatch="*")
    except Exception as exc:
        if _status(exc) in (400, 405, 501) or _code(exc) == "NotImplemented":
            return f"the store refused a conditional PUT ({_code(exc) or _status(exc)}): it has no conditional writes"
        raise
    try:
        if not _refused(lambda: _put(client, bucket, key, {"probe": 2}, IfNoneMatch="*")):
            return ("the store ignored If-None-Match: a second conditional PUT of the same key succeeded where S3 "
                    "answers 412, so two runners could both create the lease")
        if not _refused(lambda: _put(client, bucket, key, {"probe": 3}, IfMatch=WRONG_ETAG)):
            return ("the store ignored If-Match: a PUT with a wrong ETag succeeded where S3 answers 412, so a lease "
                    "could be neither renewed nor taken over safely")
        return None
    finally:
        _quietly(lambda: client.delete_object(Bucket=bucket, Key=key))


def read(client, bucket: str, key: str) -> tuple[dict, str, float] | None:
    """(the lease, its ETag, seconds since it was last written by the store's clock); None when it is not there."""
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _code(exc) in ("NoSuchKey", "404") or _status(exc) == 404:
            return None
        raise
    data = json.loads(got["Body"].read() or b"{}")
    date = (got.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
    now = parsedate_to_datetime(date) if date else datetime.now(timezone.utc)  # the store's clock when it says
    return (data if isinstance(data, dict) else {}), got["ETag"], (now - got["LastModified"]).total_seconds()


def describe(lease: dict) -> str:
    return (f"{lease.get('procedure', '?')} by {lease.get('who', '?')} (pid {lease.get('pid', '?')}), "
            f"since {lease.get('since', '?')}")


class _Renewal(threading.Thread):
    """Rewrites the lease every third of its length while the procedure runs; deletes it on release."""

    def __init__(self, client, bucket: str, key: str, body: dict, etag: str, seconds: float, notes: list[str]):
        super().__init__(name=f"s3-lease-{key}", daemon=True)
        self.client, self.bucket, self.key, self.body, self.etag = client, bucket, key, body, etag
        self.every, self.notes = seconds / 3, notes
        self.stopping, self.lost, self.failures, self.last_error = threading.Event(), False, 0, ""

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.etag = _put(self.client, self.bucket, self.key,
                                 {**self.body, "renewed": _now()}, IfMatch=self.etag)
            except Exception as exc:
                if _precondition(exc) or _status(exc) == 404 or _code(exc) == "NoSuchKey":
                    self.lost = True
                    self.notes.append(f"S3 lease LOST at {_now()}: the object was replaced or deleted by someone "
                                      "else; the procedure went on under the other locks")
                    return
                self.failures, self.last_error = self.failures + 1, _first_line(exc)

    def release(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        if self.failures:
            self.notes.append(f"S3 lease renewal failed {self.failures} time(s), last: {self.last_error}")
        if self.lost:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as exc:
            if _precondition(exc):
                self.notes.append("S3 lease not deleted: it was no longer ours")
            elif _status(exc) in (400, 501) or _code(exc) == "NotImplemented":
                self._delete_if_ours()   # a store without conditional deletes: read, then delete ours
            else:
                self.notes.append(f"S3 lease not deleted ({_first_line(exc)}): it goes stale "
                                  f"{self.every * 3:.0f}s after its last renewal")

    def _delete_if_ours(self) -> None:
        try:
            current = read(self.client, self.bucket, self.key)
            if current is not None and current[0].get("token") == self.body["token"]:
                self.client.delete_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            self.notes.append(f"S3 lease not deleted ({_first_line(exc)})")


def _put(client, bucket: str, key: str, body: dict, **condition) -> str:
    return client.put_object(Bucket=bucket, Key=key, Body=json.dumps(body, default=str).encode(),
                             ContentType="application/json", **condition)["ETag"]


def _refused(put: Callable[[], Any]) -> bool:
    try:
        put()
    except Exception as exc:
        if _precondition(exc):
            return True
        raise
    return False


def _status(exc: BaseException) -> int | None:
    # botocore's ClientError carries the response; runbook/ does not import botocore (the layering rule)
    return (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def _code(exc: BaseException) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or "")


def _precondition(exc: BaseException) -> bool:
    return _status(exc) == 412 or _code(exc) in ("PreconditionFailed", "412")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _first_line(exc: BaseException) -> str:
    """What went wrong, short: its first line without the component's "Next step" (ours follows)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).split(". Next step")[0][:200]


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        pass
