"""The contract suites run against this guide's backends: subclass, add the fixture.

Put this in your plugin's tests (pytest collects the ``Test*`` classes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# This guide's example backends; import your own instead.
from limit_store import MemoryQuotaStore, MemoryRateLimiter
from storage_backend import MemoryStorage
from token_verifier import MAX_AGE, SignedUploadTokens, issue_upload_token

from hepcore import Config, Runtime, build_runtime
from hepcore.testing import FakeClock
from hepcore.testing.contracts import (
    QuotaStoreContract,
    RateLimiterContract,
    StorageContract,
    TokenVerifierContract,
)


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def limiter(self, clock: FakeClock) -> MemoryRateLimiter:
        return MemoryRateLimiter(clock)


class TestMemoryQuotaStore(QuotaStoreContract):
    @pytest.fixture
    def quotas(self) -> MemoryQuotaStore:
        return MemoryQuotaStore()


class TestSignedUploadTokens(TokenVerifierContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def runtime(self, tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
        runtime = build_runtime(Config(data_dir=tmp_path, secrets=["contract-secret"]),
                                clock=clock)
        yield runtime
        runtime.close()

    @pytest.fixture
    def verifier(self, runtime: Runtime) -> SignedUploadTokens:
        return SignedUploadTokens(runtime)

    @pytest.fixture
    def service(self) -> str:
        return "uploader"

    @pytest.fixture
    def good_credential(self, runtime: Runtime) -> str:
        return issue_upload_token(runtime, runtime.accounts.create("alice").id)

    @pytest.fixture
    def bad_credential(self, good_credential: str, clock: FakeClock) -> str:
        clock.advance(MAX_AGE + 60)  # expired
        return good_credential

    @pytest.fixture
    def foreign_credential(self, runtime: Runtime) -> str:
        token, _ = runtime.keys.create("uploader", runtime.accounts.create("bob").id)
        return token  # an API key: the default verifier's, not ours
