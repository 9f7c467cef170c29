"""Sessions: Django's cached-database sessions, with the cached copy kept a minute at most.

Every page reads the session; from the cache that costs no database query. The database stays
the record (every save writes it; a miss reads it), so an unreachable cache only slows pages
down. A logout or password change deletes the cached copy too; the one-minute cap bounds what a
delete lost while the cache was unreachable could leave behind (the session expiry itself is
still the database's, and a cached copy never outlives it).
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore

CACHED_SECONDS = 60


class _CappedCache:
    """The session cache, every entry's timeout capped at ``CACHED_SECONDS``."""

    def __init__(self, cache: Any):
        self._cache = cache

    @staticmethod
    def _cap(timeout: Any) -> int:
        return CACHED_SECONDS if timeout is None else min(int(timeout), CACHED_SECONDS)

    def set(self, key: str, value: Any, timeout: Any = None, *args: Any, **kwargs: Any) -> Any:
        return self._cache.set(key, value, self._cap(timeout), *args, **kwargs)

    async def aset(self, key: str, value: Any, timeout: Any = None, *args: Any,
                   **kwargs: Any) -> Any:
        return await self._cache.aset(key, value, self._cap(timeout), *args, **kwargs)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


class SessionStore(CachedDBStore):
    def __init__(self, session_key: str | None = None):
        super().__init__(session_key)
        self._cache = _CappedCache(self._cache)
