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
