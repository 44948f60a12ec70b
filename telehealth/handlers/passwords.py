"""Argon2 on an executor of its own, and a cap on anonymous work that answers at once when full."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telehealth.records.errors import Busy
from telehealth.records.tokens import new_token

_hasher = PasswordHasher()
# Verifying against this for unknown users keeps the answer's timing the same as for a real account.
DUMMY_HASH = _hasher.hash(new_token())


class PasswordChecker:
    """Argon2id checks on ``threads`` threads (64 MiB each): a flood queues here, not in the shared pool."""

    def __init__(self, threads: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        self.checks = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches the hash (call it holding no database connection)."""
        self.checks += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _verify, password_hash, password)

    async def hash(self, password: str) -> str:
        """An argon2id hash of the password."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, _hasher.hash, password)

    def close(self) -> None:
        """Stop the threads once running checks finish (at application shutdown)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class AdmissionGate:
    """At most ``limit`` anonymous requests at work at once; the next one is refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for one request, or raise Busy (429 with Retry-After) when none is free."""
        if self.active >= self.limit:
            raise Busy("the server is busy; try again in a moment", retry_after=1)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
