"""mesh.redis: the one way to the target's Redis, with socket deadlines on every call and its failures said
in one line (a wrong password is a refusal, not an outage)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import redis as redis_lib
from redis.connection import parse_url

from ..types import Unreachable
from . import Component, first_line, hostport


class Redis(Component):
    Error = redis_lib.RedisError

    def _password(self) -> str | None:
        env = self.target.redis.password_env
        return self.target.secret(env) if env else None

    @functools.cached_property
    def client(self) -> redis_lib.Redis:
        """Database of the URL, text in and out, the target's deadline."""
        return redis_lib.Redis.from_url(self.target.redis.url, password=self._password() or None,
                                        socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                                        decode_responses=True)

    def db(self, db: int, timeout: float | None = None) -> redis_lib.Redis:
        """A client on database `db`, bytes in and out (DUMP payloads are binary). from_url would let the
        URL's /0 win over db=, so the URL is parsed and the database chosen here."""
        opts = parse_url(self.target.redis.url)
        opts.update(db=db, socket_timeout=timeout or max(10.0, self.timeout),
                    socket_connect_timeout=timeout or max(5.0, self.timeout))
        if self._password():
            opts["password"] = self._password()
        return redis_lib.Redis(**opts)

    def call(self, what: str, fn: Callable[[redis_lib.Redis], Any]) -> Any:
        """fn(client), with every Redis failure turned into an Unreachable that says what to do."""
        where = hostport(self.target.redis.url)
        try:
            return fn(self.client)
        except redis_lib.AuthenticationError as exc:  # it answered: the password is wrong
            raise Unreachable(f"Redis at {where} refused {what}: {first_line(exc)}. Next step: check the password "
                              f"the target names (${self.target.redis.password_env or 'in the URL'}).") from None
        except redis_lib.ResponseError as exc:  # it answered, with an error: an ACL or a renamed command
            raise Unreachable(f"Redis at {where} refused {what}: {first_line(exc)}. Next step: the target's Redis "
                              f"user needs this command (ACL GETUSER; ElastiCache renames some).") from None
        except redis_lib.RedisError as exc:
            raise Unreachable(f"Redis at {where} did not answer {what} within {self.timeout:g}s: "
                              f"{first_line(exc)}. Next step: docker compose ps redis; docker logs redis.") from None

    def ping(self) -> bool:
        return self.call("PING", lambda r: r.ping())

    def memory(self) -> dict:
        info = self.call("INFO memory", lambda r: r.info("memory"))
        return {k: info.get(k) for k in ("used_memory", "used_memory_human", "maxmemory", "maxmemory_human",
                                         "maxmemory_policy", "mem_fragmentation_ratio")}

    def key_count(self) -> int:
        """Keys over every database (INFO keyspace): DBSIZE alone counts only the selected one."""
        return sum(v.get("keys", 0) for v in self.call("INFO keyspace", lambda r: r.info("keyspace")).values())

    # -- the webhook stream and persistence: read-only, one command each, the raw answer kept as evidence --
    def _absent_is_none(self, what: str, fn: Callable[[redis_lib.Redis], Any]) -> Any:
        """fn(client), or None when Redis says the key or the group does not exist: a finding for the check
        to name ("no stream webhooks"), not an outage."""
        def guarded(r: redis_lib.Redis) -> Any:
            try:
                return fn(r)
            except redis_lib.ResponseError as exc:
                if "no such key" in str(exc).lower() or str(exc).startswith("NOGROUP"):
                    return None
                raise
        answer = self.call(what, guarded)
        self.evidence.json(what, answer if answer is not None else "(no such key or group)")
        return answer

    def time_ms(self) -> int:
        """Redis's own clock (TIME), in ms: stream IDs are stamped by it, so ages are measured against it
        and a skewed clock on the machine running the checks cannot fake an age."""
        seconds, micros = self.call("TIME", lambda r: r.time())
        return int(seconds) * 1000 + int(micros) // 1000

    def key_type(self, key: str) -> str:
        """'stream', 'none' (no such key), or whatever else squats on the name."""
        return self.call(f"TYPE {key}", lambda r: r.type(key))

    def stream_groups(self, stream: str) -> list[dict] | None:
        """XINFO GROUPS: name, consumers, pending, last-delivered-id, entries-read and lag (Redis 7)."""
        return self._absent_is_none(f"XINFO GROUPS {stream}", lambda r: r.xinfo_groups(stream))

    def stream_consumers(self, stream: str, group: str) -> list[dict] | None:
        """XINFO CONSUMERS: name, pending, idle (ms), and inactive (ms, Redis 7.2 and later)."""
        return self._absent_is_none(f"XINFO CONSUMERS {stream} {group}", lambda r: r.xinfo_consumers(stream, group))

    def pending_summary(self, stream: str, group: str) -> dict | None:
        """XPENDING summary: pending count, lowest and highest ID, entries per consumer."""
        return self._absent_is_none(f"XPENDING {stream} {group}", lambda r: r.xpending(stream, group))

    def pending_entries(self, stream: str, group: str, *, start: str = "-", end: str = "+", count: int = 100,
                        min_idle_ms: int | None = None) -> list[dict]:
        """XPENDING extended: message_id, consumer, time_since_delivered (ms), times_delivered; with
        min_idle_ms only the entries idle at least that long (IDLE, Redis 6.2)."""
        what = f"XPENDING {stream} {group} {'IDLE %d ' % min_idle_ms if min_idle_ms is not None else ''}" \
               f"{start} {end} {count}"
        return self._absent_is_none(what, lambda r: r.xpending_range(stream, group, start, end, count,
                                                                     idle=min_idle_ms)) or []

    def entry_ids(self, stream: str, start: str, end: str = "+", count: int = 1000) -> list[str]:
        """The IDs of XRANGE stream start end COUNT count (the fields are not kept: IDs carry the time)."""
        ids = self.call(f"XRANGE {stream} {start} {end} COUNT {count}",
                        lambda r: [entry_id for entry_id, _ in r.xrange(stream, start, end, count=count)])
        shown = ids[:20] + (["..."] if len(ids) > 20 else [])
        self.evidence.json(f"XRANGE {stream} {start} {end} COUNT {count}: IDs", shown)
        return ids

    def command_counts(self, commands: tuple[str, ...]) -> dict:
        """INFO commandstats and uptime: {"uptime_s": ..., "run_id": ..., name: {"calls", "failed_calls"}} for
        each of `commands` as Redis 7 names them ("xgroup|destroy"); a command never called has no entry.
        Counted since Redis started (or CONFIG RESETSTAT): history for checks that Prometheus cannot give."""
        stats = self.call("INFO commandstats", lambda r: r.info("commandstats"))
        server = self.call("INFO server", lambda r: r.info("server"))
        counts = {"uptime_s": server.get("uptime_in_seconds"), "run_id": server.get("run_id"),
                  "version": server.get("redis_version")}
        for name in commands:
            raw = stats.get(f"cmdstat_{name}")
            if raw is not None:
                counts[name] = {"calls": int(raw.get("calls", 0)), "failed_calls": int(raw.get("failed_calls", 0))}
        self.evidence.json("INFO commandstats (" + ", ".join(commands) + ")", counts)
        return counts

    def persistence(self) -> dict:
        """INFO persistence (answered by managed Redis too, where CONFIG is not)."""
        info = self.call("INFO persistence", lambda r: r.info("persistence"))
        self.evidence.json("INFO persistence", info)
        return info

    def config_value(self, name: str) -> str | None:
        """CONFIG GET name, or None when the server refuses CONFIG (ElastiCache renames it)."""
        def get(r: redis_lib.Redis) -> str | None:
            try:
                return r.config_get(name).get(name)
            except redis_lib.ResponseError:
                return None
        value = self.call(f"CONFIG GET {name}", get)
        self.evidence.json(f"CONFIG GET {name}", value if value is not None else "(refused)")
        return value
