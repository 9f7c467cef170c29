"""A Redis cache that degrades to misses when Redis is down.

The cache only ever holds what can be recomputed or lost (live job progress, API throttle
counters, sessions are in the database): an outage must slow the site down, never break a page.
Every operation that fails with a Redis connection or timeout error is logged (once per
``_LOG_EVERY`` seconds, so an outage does not flood the log) and answered as a miss: ``get``
returns the default, ``add`` and ``set`` report nothing stored, ``incr`` raises ``ValueError``
as for a missing key (which is what Django's callers expect), ``delete`` reports nothing
deleted. Connections are made with short timeouts so a dead Redis costs milliseconds, not the
operating system's TCP timeout.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

log = logging.getLogger(__name__)
_LOG_EVERY = 30.0
_last_logged = 0.0


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions as rex

    # ConnectionError and TimeoutError cover refused, reset, unreachable and slow servers;
    # BusyLoadingError (a subclass) a restarting server; ReadOnlyError a failed-over replica.
    return (rex.ConnectionError, rex.TimeoutError, rex.ReadOnlyError, OSError)


def _degrade(default: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except _redis_errors() as exc:
                _log_outage(method.__name__, exc)
                return default(*args, **kwargs)

        return wrapper

    return decorator


def _log_outage(operation: str, exc: BaseException) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= _LOG_EVERY:
        _last_logged = now
        log.warning(
            "cache unavailable (%s: %s: %s); answering as a miss",
            operation,
            type(exc).__name__,
            exc,
        )


def _missing_key(key: Any, *args: Any, **kwargs: Any) -> Any:
    raise ValueError(f"Key '{key}' not found (the cache is unavailable)")


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client, keeping one ``redis.Redis`` per connection pool.

    Django builds a new ``redis.Redis`` for every operation, and redis-py's constructor copies
    its ~170 response callbacks into a fresh case-insensitive dict each time: about a
    millisecond of CPU per cache call, most of the CPU a cached page cost (bench/load_bench.py).
    A ``redis.Redis`` keeps no connection of its own (its pool does, one per thread at a time,
    and the pool starts afresh in a forked worker), so one per pool is safe across threads.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            make = self._client  # type: ignore[attr-defined]
            client = self._clients.setdefault(id(pool), make(connection_pool=pool))
        return client

    def incr(self, key: Any, delta: int) -> Any:
        """Django's ``incr`` (a ValueError for a missing key, which it does not create) in one
        round trip: Django asks EXISTS, then INCRBY, and every tracked write bumps its
        organization's data version this way, twice (now and at commit). The script is also
        atomic, where the key could expire between Django's two commands."""
        import redis.exceptions as rex

        client = self.get_client(key, write=True)
        try:
            value = client.register_script(_INCR_EXISTING)(keys=[key], args=[delta])
        except rex.ResponseError:  # a server (or an ACL) without scripting: Django's two steps
            return super().incr(key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


#: INCRBY of a key that exists; nil (and nothing created) for one that does not.
_INCR_EXISTING = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end"
)


class ResilientRedisCache(RedisCache):
    """Django's ``RedisCache`` whose connection failures are misses, not server errors."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = dict(params)
        options = dict(params.get("OPTIONS") or {})
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 2)
        params["OPTIONS"] = options
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    @_degrade(lambda key, default=None, *a, **k: default)
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return super().get(key, default, version)

    @_degrade(lambda *a, **k: False)
    def add(self, *args: Any, **kwargs: Any) -> bool:
        return super().add(*args, **kwargs)

    @_degrade(lambda *a, **k: None)
    def set(self, *args: Any, **kwargs: Any) -> None:
        super().set(*args, **kwargs)

    @_degrade(lambda *a, **k: False)
    def touch(self, *args: Any, **kwargs: Any) -> bool:
        return super().touch(*args, **kwargs)

    @_degrade(lambda *a, **k: False)
    def delete(self, *args: Any, **kwargs: Any) -> bool:
        return super().delete(*args, **kwargs)

    @_degrade(lambda *a, **k: {})
    def get_many(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return super().get_many(*args, **kwargs)

    @_degrade(lambda *a, **k: False)
    def has_key(self, *args: Any, **kwargs: Any) -> bool:
        return super().has_key(*args, **kwargs)

    @_degrade(_missing_key)
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        return super().incr(key, delta, version)

    @_degrade(lambda data, *a, **k: list(data))
    def set_many(self, data: dict[Any, Any], *args: Any, **kwargs: Any) -> list[Any]:
        return super().set_many(data, *args, **kwargs)

    @_degrade(lambda *a, **k: None)
    def delete_many(self, *args: Any, **kwargs: Any) -> None:
        super().delete_many(*args, **kwargs)

    @_degrade(lambda *a, **k: False)
    def clear(self) -> bool:
        # ``RedisCache.clear`` returns its client's answer; django-stubs types the method as
        # ``BaseCache``'s (None), so ask the client as Django itself does.
        return self._cache.clear()
