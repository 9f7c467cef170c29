"""Sessions: Django's cached-database sessions, a cached copy trusted for a minute at most.

Every page reads the session; from the cache that costs no database query. The database stays
the record: every save writes it, and a cached copy is used only while it is younger than
``CACHED_SECONDS`` and its session has not expired, both judged by this server's clock (not by
the cache's own expiry). A logout or password change deletes the cached copy too; the minute
bounds what a delete lost while the cache was unreachable could leave behind.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore

if TYPE_CHECKING:
    from django.contrib.sessions.base_session import AbstractBaseSession
    from django.core.cache.backends.base import BaseCache

CACHED_SECONDS = 60
_FORMAT = 1  # of the cached entry


class SessionStore(CachedDBStore):
    # Django's own, which django-stubs leaves out: the session cache (``CachedDBStore``), the
    # loaded data (``SessionBase``) and the record's read (``DBStore``).
    _cache: BaseCache
    _session: dict[str, Any]
    if TYPE_CHECKING:

        def _get_session_from_db(self) -> AbstractBaseSession | None: ...

    def load(self) -> dict[str, Any]:
        try:
            entry = self._cache.get(self.cache_key)
        except Exception:  # noqa: BLE001 - as Django's: an unusable key is a miss
            entry = None
        now = time.time()
        if (
            isinstance(entry, dict)
            and entry.get("format") == _FORMAT
            and entry["cached_at"] <= now < entry["cached_at"] + CACHED_SECONDS
            and now < entry["expires_at"]
        ):
            return entry["data"]
        stored = self._get_session_from_db()
        if not stored:
            return {}
        data = self.decode(stored.session_data)
        self._cache_copy(data, stored.expire_date)
        return data

    def save(self, must_create: bool = False) -> None:
        DBStore.save(self, must_create)  # the record first
        self._cache_copy(self._session, self.get_expiry_date())

    def _cache_copy(self, data: dict[str, Any], expires: dt.datetime) -> None:
        now = time.time()
        seconds = min(CACHED_SECONDS, int(expires.timestamp() - now))
        if seconds <= 0:
            return
        self._cache.set(
            self.cache_key,
            {"format": _FORMAT, "data": data, "cached_at": now, "expires_at": expires.timestamp()},
            seconds,
        )

    async def aload(self) -> dict[str, Any]:
        return await sync_to_async(self.load)()

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)
