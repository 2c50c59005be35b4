"""A captcha verifier for Cloudflare Turnstile (hCaptcha and reCAPTCHA take the
same form post). Register an instance: ``plugins=[Turnstile(secret)]``."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlencode

from hepcore import Request, hookimpl

SITEVERIFY = "https://challenges.cloudflare.com/turnstile/v0/siteverify"


class Turnstile:
    def __init__(self, secret: str, *, verify_url: str = SITEVERIFY, timeout: float = 5.0) -> None:
        self.secret = secret
        self.verify_url = verify_url
        self.timeout = timeout

    @hookimpl
    def hepcore_verify_captcha(self, token: str, request: Request) -> bool | None:
        if not token:
            return False
        form = {"secret": self.secret, "response": token}
        if request.client_ip:
            form["remoteip"] = request.client_ip
        try:
            with urllib.request.urlopen(self.verify_url, data=urlencode(form).encode(),
                                        timeout=self.timeout) as resp:
                result = json.load(resp)
        except (OSError, ValueError):
            return False  # fail closed: an unreachable provider lets no bot through
        return result.get("success") is True
