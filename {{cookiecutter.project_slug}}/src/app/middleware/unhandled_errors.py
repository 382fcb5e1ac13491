"""Turns any exception that escaped the app into a logged 500 problem response.

Starlette's own `ServerErrorMiddleware` sits outside every user middleware, so the response it
sends would miss the correlation id and the security headers. Catching here keeps them.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.problems import problem_body, render_problem
from app.middleware.access_log import route_template
from app.observability.logging import get_logger

log = get_logger("app.errors")


class UnhandledErrorMiddleware:
    """Logs the exception with its traceback and answers 500 without any detail of it."""

    def __init__(self, app: ASGIApp, support_url: str) -> None:
        self.app = app
        self.support_url = support_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        def send_tracking_start(message: Message) -> Awaitable[None]:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            return send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception:
            log.exception("unhandled_exception", route=route_template(scope))
            if response_started:
                # Headers are on the wire; the server closes the connection for us.
                raise
            body = problem_body(
                500,
                "Internal Server Error",
                "The server could not complete the request. Quote the correlation id to support.",
                self.support_url,
            )
            await render_problem(scope, body)(scope, receive, send)
