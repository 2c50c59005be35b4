"""hepcore: self-hostable upload, paste and link services as Falcon components.

The core (this package minus ``hepcore.web``) never imports Falcon;
``create_app`` and ``add_service`` load the web layer on first use.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .accounts import Account, AccountStore
from .config import Config, ServiceConfig, load_config
from .envelope import CodeEnvelope, Envelope, ErrorEnvelope, OkEnvelope
from .events import Event
from .hookimpl import hookimpl
from .http import BodyReader, BytesBody, Request, Response, StreamBody
from .inspection import Rejection, UploadCandidate
from .limits import Limit, QuotaStore, RateDecision, RateLimiter
from .outbound import (
    DestinationBlocked,
    Fetcher,
    FetchError,
    FetchResponse,
    FetchTimeout,
    OutboundPolicy,
    ResponseTooLarge,
)
from .runtime import Runtime, build_runtime
from .service import Route, Service
from .storage import LocalStorage, ObjectWriter, Storage, StoredObject
from .tokens import Actor, KeyStore, TokenSigner, TokenVerifier

__version__ = "0.1.0"

__all__ = [
    "Account", "AccountStore", "Actor", "BodyReader", "BytesBody", "CodeEnvelope", "Config",
    "DestinationBlocked", "Envelope", "ErrorEnvelope", "Event", "FetchError", "FetchResponse",
    "FetchTimeout", "Fetcher", "KeyStore", "Limit", "LocalStorage", "ObjectWriter", "OkEnvelope",
    "OutboundPolicy", "QuotaStore", "RateDecision", "RateLimiter", "Rejection", "Request",
    "Response", "ResponseTooLarge", "Route", "Runtime", "Service", "ServiceConfig", "Storage",
    "StoredObject", "StreamBody", "TokenSigner", "TokenVerifier", "UploadCandidate", "add_service",
    "build_runtime", "create_app", "errors", "hookimpl", "load_config",
]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "add_service"):
        from . import web

        return getattr(web, name)
    raise AttributeError(f"module 'hepcore' has no attribute {name!r}")
