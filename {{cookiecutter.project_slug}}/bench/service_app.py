"""The real service for `make bench`: `create_app()` plus a trivial route, served as `serve` does.

The route runs through the whole production stack (tracing, correlation id, access log and RED
metrics, security headers, rate limiting with its Redis round trip, the error middleware) and
measures what that stack costs on a route that does nothing. It is mounted twice:

- `/hello` at the front of the route table, so the router matches it first, as the bare app's
  only route is: the pair measures the middleware stack, the goal's subject;
- `/hello/last` behind every route of the service, as a route added to the service would be: the
  difference between the two is what FastAPI's linear route matching costs (pair 3c, no goal).

uvicorn gets the same arguments as `app.cli` gives it. `BENCH_WITHOUT=RateLimitMiddleware,...`
leaves those middleware classes out, to measure what each costs over HTTP (docs/performance.md).

    python bench/service_app.py --port 8100    # the service's environment (DATABASE_URL, ...)
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI

from app.main import create_app


async def hello() -> dict[str, str]:
    return {"hello": "world"}


def create_bench_app() -> FastAPI:
    app = create_app()
    app.add_api_route("/hello/last", hello, methods=["GET"])
    app.add_api_route("/hello", hello, methods=["GET"])
    routes = app.router.routes
    routes.insert(0, routes.pop())  # `/hello` to the front of the table
    left_out = {name.strip() for name in os.environ.get("BENCH_WITHOUT", "").split(",")}
    # Starlette builds the middleware stack from this list at the first call, after this.
    app.user_middleware = [
        m for m in app.user_middleware if getattr(m.cls, "__name__", "") not in left_out
    ]
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="the service plus /hello, for make bench")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The arguments of `app.cli._run_server`, apart from the factory.
    uvicorn.run(
        "service_app:create_bench_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
