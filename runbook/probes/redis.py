"""Redis probes. Every call carries socket deadlines."""
from __future__ import annotations

import redis


def client(url: str, password: str | None, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, password=password or None, socket_timeout=timeout,
                                socket_connect_timeout=timeout, decode_responses=True)


def memory(r: redis.Redis) -> dict:
    info = r.info("memory")
    return {k: info.get(k) for k in ("used_memory", "used_memory_human", "maxmemory", "maxmemory_human",
                                     "maxmemory_policy", "mem_fragmentation_ratio")}
