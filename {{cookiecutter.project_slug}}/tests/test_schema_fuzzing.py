"""API-CONTRACTS: fuzzing the running service from its OpenAPI document, every check on.

Schemathesis sends valid and invalid requests to every operation, then follows the document's
links from a create to what can be done with the created resource (the stateful test). Every
built-in check runs: no 5xx, answers as documented, valid requests accepted, invalid ones
refused, a created resource available until deleted and gone after. Where the document cannot
state a rule (a signed token, a rule between two parameters, what a host name resolves to),
EXPECTED and the hooks below say so, each with its reason (docs/errors.md, "Schema fuzzing").
"""

from __future__ import annotations

import copy
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.hooks import HookContext

from app.dev.services import ServiceUrls
from app.idempotency.keys import HEADER as IDEMPOTENCY_KEY
from app.idempotency.keys import IdempotencyKeyError, parse_key
from app.main import create_app
from app.settings import Settings
from app.tenants.admin import create_tenant_now
from tests.processes import PROJECT_ROOT, env_for, free_port, wait_for_port

# Schemathesis' defaults, for the operations below that may also answer something else.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]
MISSING = ["400", "401", "403", "406", "415", "422"]
UPLOADS = "^[A-Z]+ /api/v1/uploads"
# (operations as a regex of "METHOD /path", check, its defaults, what else they may answer, why)
EXPECTED: list[tuple[str, str, list[str], list[str], str]] = [
    ("^GET /api/v1/notes$", "positive_data_acceptance", ACCEPTED, ["400"],
     "a cursor is signed: only one the API issued is accepted, however well formed a made-up "
     "one is (400 invalid-cursor, the operation's only 400)"),
    ("^(PATCH|DELETE) /api/v1/notes/", "positive_data_acceptance", ACCEPTED, ["412"],
     "a valid If-Match naming a version the note no longer has is answered 412, its purpose"),
    (UPLOADS, "missing_required_header", MISSING, ["412"],
     "tus 1.0 answers a missing Tus-Resumable with 412"),
    (UPLOADS, "negative_data_rejection", REJECTED, ["412"],
     "tus 1.0 answers an unsupported Tus-Resumable with 412, before reading anything else"),
    ("^POST /api/v1/uploads$", "positive_data_acceptance", ACCEPTED, ["400", "413", "415"],
     "Upload-Metadata must hold base64 of UTF-8 text naming an allowed type (400, 415), the "
     "size must fit UPLOAD_MAX_BYTES (413) and the bytes their declared type (415): encodings "
     "and deployment settings that JSON Schema cannot state"),
    ("^PATCH /api/v1/uploads/", "positive_data_acceptance", ACCEPTED, ["413", "415"],
     "the bytes must fit what the upload's Upload-Length leaves (413) and its declared type "
     "(415): rules between requests"),
]  # fmt: skip
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-name-regex": operations,
                "checks": {check: {"expected-statuses": defaults + extra}},
            }
            for operations, check, defaults, extra, _why in EXPECTED
        ]
    }
)
# Upload bytes are an octet stream under tus' own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
# Nothing is delivered in this test (no worker runs); the service accepts this range so that
# generated webhook URLs can be created without DNS (TEST-NET-1, RFC 5737: never routed).
WEBHOOK_HOST = "192.0.2.1"
WEBHOOK_NETWORK = "192.0.2.0/24"

# The document the running service serves: the app built with test settings answers it without
# touching a database, so the cases are known when pytest collects them. Schemathesis adds the
# links it infers to the copy it is given.
DOCUMENT = create_app(Settings(environment="test")).openapi()


def _replays_send_the_same_body(document: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis merges a link's body into one it generates; a retry resends the same body."""
    for item in document["paths"].values():
        for response in item.get("post", {}).get("responses", {}).values():
            if "Retry" in response.get("links", {}):
                response["links"]["Retry"]["x-schemathesis"] = {"merge_body": False}
    return document


schema = schemathesis.openapi.from_dict(
    _replays_send_the_same_body(copy.deepcopy(DOCUMENT)), config=CONFIG
)


def _positive(case: schemathesis.Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _timestamp(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _breaks_a_header_pattern(case: schemathesis.Case[Any]) -> bool:
    """Schemathesis 4.32's coverage phase fills an optional header whose pattern needs a
    character outside [A-Za-z0-9] (If-Match: `"v1"`, `*`) with "0" and still calls the case
    valid: such a case is not one the document allows."""
    operation = DOCUMENT["paths"][case.operation.path][case.method.lower()]
    headers = {name.lower(): value for name, value in (case.headers or {}).items()}
    return any(
        re.search(parameter["schema"]["pattern"], str(headers[parameter["name"].lower()])) is None
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
        and "pattern" in parameter["schema"]
        and parameter["name"].lower() in headers
    )


@schema.hook
def filter_case(context: HookContext, case: schemathesis.Case[Any]) -> bool:
    """Valid cases are the ones the document allows. A valid list request also has
    `created_after` earlier than `created_before`: a rule between two parameters, stated in
    their descriptions, that JSON Schema cannot express."""
    if not _positive(case):
        return True
    query = case.query or {}
    after, before = _timestamp(query.get("created_after")), _timestamp(query.get("created_before"))
    return not (_breaks_a_header_pattern(case) or (after and before and after >= before))


@schema.hook
def map_case(context: HookContext, case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    """A webhook URL's host must resolve to an address the service accepts, and this machine
    resolves no generated name: valid URLs get WEBHOOK_HOST as their host, the rest unchanged."""
    label = context.operation.label if context.operation is not None else ""
    body = case.body
    if label != "POST /api/v1/webhook-endpoints" or not _positive(case):
        return case
    if not isinstance(body, dict):
        return case
    try:
        parts = urlsplit(str(body.get("url")))
    except ValueError:  # not a URL Python can split: left for the service to judge
        return case
    user, _, host = parts.netloc.rpartition("@")
    if parts.hostname:
        port = host.rpartition("]")[2].partition(":")[2]  # as written, even if out of range
        netloc = (f"{user}@" if user else "") + WEBHOOK_HOST + (f":{port}" if port else "")
        case.body = {**body, "url": urlunsplit(parts._replace(netloc=netloc))}
    return case


@dataclass
class Client:
    """A tenant's API key, and the Idempotency-Keys sent with it.

    An Idempotency-Key names one request (docs/idempotency.md): the generator repeats values, so
    a key already sent with another request is replaced by a fresh one. The same request keeps
    its key: its replay must answer the same resource, or a 409 once that is deleted."""

    base_url: str
    api_key: str
    keys_sent: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def fresh_key(self, case: schemathesis.Case[Any]) -> None:
        headers = case.headers
        value = headers.get(IDEMPOTENCY_KEY) if headers is not None else None
        try:
            key = parse_key(value) if isinstance(value, str) else None
        except IdempotencyKeyError:
            return
        if headers is None or key is None:
            return
        request = f"{case.operation.label} {case.body!r}"
        if self.keys_sent.setdefault(key, request) != request:
            key = str(uuid.uuid4())
            headers[IDEMPOTENCY_KEY] = key
            self.keys_sent[key] = request

    def delete_webhook_endpoints(self) -> None:
        """At most 100 per tenant: the endpoints made by one case are deleted after it."""
        url = f"{self.base_url}/api/v1/webhook-endpoints"
        for item in httpx2.get(url, headers=self.headers, timeout=10).json()["items"]:
            httpx2.delete(f"{url}/{item['id']}", headers=self.headers, timeout=10)


@dataclass(frozen=True)
class RunningService:
    base_url: str
    owner_database_url: str

    def new_client(self) -> Client:
        """A client of a new tenant: nothing another test case did is visible to it."""
        tenant = create_tenant_now(self.owner_database_url, "fuzz")
        return Client(self.base_url, tenant.api_key)


@pytest.fixture(scope="module")
def running_service(
    service_urls: ServiceUrls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    port = free_port()
    env = env_for(
        service_urls,
        RATE_LIMIT_PER_IP="100000/second",
        RATE_LIMIT_PER_PRINCIPAL="100000/second",
        WEBHOOK_ALLOWED_NETWORKS=WEBHOOK_NETWORK,
    )
    log = tmp_path_factory.mktemp("fuzz") / "service.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for_port(port, process), log.read_text()
            yield RunningService(f"http://127.0.0.1:{port}", service_urls.owner_database_url)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def client(running_service: RunningService) -> Client:
    return running_service.new_client()


FUZZ_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_the_api_keeps_its_contract(case: schemathesis.Case[Any], client: Client) -> None:
    """Generated valid and invalid requests: no 5xx, valid ones accepted, invalid ones refused,
    and every answer as the document describes it."""
    client.fresh_key(case)
    response = case.call_and_validate(base_url=client.base_url, headers=client.headers)
    if case.operation.label == "POST /api/v1/webhook-endpoints" and response.status_code == 201:
        client.delete_webhook_endpoints()


def test_the_api_keeps_its_contract_across_calls(running_service: RunningService) -> None:
    """Sequences that follow the document's links: a note created, read, changed with its ETag
    and deleted; a webhook endpoint created and deleted; a create replayed. A created resource
    must be there for the next call, a deleted one gone, and every answer as documented."""

    class Calls(schema.as_state_machine()):  # type: ignore[misc]
        client: Client

        def setup(self) -> None:
            # A tenant per scenario: a scenario replayed while Hypothesis shrinks it starts from
            # the same (empty) state, its Idempotency-Keys included.
            self.client = running_service.new_client()

        def before_call(self, case: schemathesis.Case[Any]) -> None:
            self.client.fresh_key(case)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": self.client.base_url, "headers": self.client.headers}

    Calls.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_the_fuzzed_document_is_the_one_served(running_service: RunningService) -> None:
    """The cases come from the document the service publishes, problem responses included."""
    served = httpx2.get(f"{running_service.base_url}/openapi.json", timeout=10).json()
    assert served == DOCUMENT
    create = served["paths"]["/api/v1/notes"]["post"]["responses"]
    assert set(create["422"]["content"]) == {"application/problem+json", "text/html"}
    assert {"4XX", "5XX"} <= set(create)
