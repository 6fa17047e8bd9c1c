"""Who a bearer token belongs to: the tokens of the configuration, then (when enabled) the hashed tokens
of the database, whose lookups are cached for a few seconds so that a revoked or new token takes
effect without a restart and a request costs at most one indexed query."""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict

from editing_service.config import ServiceConfig
from editing_service.roles import Principal
from editing_service.store import Database, principal_for_digest, token_digest

CACHED_LOOKUPS = 4096


class PrincipalResolver:
    """Bearer token -> Principal, or None when the token is not valid."""

    def __init__(self, config: ServiceConfig) -> None:
        self.configured = config.tokens
        self.cache_seconds = config.token_cache_seconds
        self._db = Database(config.database_url) if config.database_tokens else None
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def uses_database(self) -> bool:
        return self._db is not None

    def configured_principal(self, token: str) -> Principal | None:
        """The principal of a configured token (compared in constant time)."""
        found = None
        for known, principal in self.configured.items():
            if hmac.compare_digest(token.encode("utf-8", "surrogateescape"), known.encode()):
                found = principal
        return found

    def database_principal(self, token: str) -> Principal | None:
        """The principal of a live database token (blocking: one query unless cached)."""
        if self._db is None:
            return None
        digest = token_digest(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1]
        principal = principal_for_digest(self._db, digest)
        with self._lock:
            self._cache[digest] = (now, principal)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHED_LOOKUPS:
                self._cache.popitem(last=False)
        return principal

    def forget(self) -> None:
        """Drop the cached lookups (this process revoked or created a token)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
