"""A service with options: ``[services.greeter]`` is read and checked in
``start()``, so a wrong value or a misspelt name stops the host at start-up."""

from __future__ import annotations

from hepcore import OkEnvelope, Request, Response, Route, Runtime, Service, hookimpl
from hepcore.errors import BadRequest


class GreeterService(Service):
    name = "greeter"
    envelope = OkEnvelope()
    strict_options = True  # a key of [services.greeter] that start() does not read is refused

    def start(self) -> None:
        self.greeting = self.config.text("greeting", "Hello")
        self.max_name = self.config.integer("max_name", 64, low=1)
        self.shout = self.config.flag("shout")

    def routes(self) -> list[Route]:
        return [Route(("GET",), "/{who}", self.greet, "greet", "Greet someone")]

    def greet(self, request: Request) -> Response:
        who = request.params["who"]
        if len(who) > self.max_name:
            raise BadRequest("Name too long")
        text = f"{self.greeting}, {who}!"
        return OkEnvelope.success({"text": text.upper() if self.shout else text})


@hookimpl
def hepcore_register_services(runtime: Runtime) -> list[Service]:
    return [GreeterService(runtime, runtime.config.service("greeter"))]
