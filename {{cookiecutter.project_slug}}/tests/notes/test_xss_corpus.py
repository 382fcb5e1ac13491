"""SEC-SANITIZE: no payload of the XSS corpus survives an HTML note, stored or sanitized directly.

Each payload is checked twice: through the real API (POST as an HTML note, then GET, the body as
stored in PostgreSQL), and against `sanitize_html` directly. Replacing the sanitizer with the
identity function makes both fail (docs/api.md, "HTML notes").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.notes.html_policy import sanitize_html
from app.tenants.service import NewTenant
from tests.notes.xss_payloads import PAYLOADS, dangers, runnable_url

BENIGN = [
    "<p>Plain <strong>bold</strong>, <em>italic</em> and <code>code</code>.</p>",
    '<p><a href="https://example.com/docs?page=2#intro" rel="noopener noreferrer">docs</a></p>',
    '<p><a href="mailto:team@example.com" rel="noopener noreferrer">mail us</a></p>',
    '<ul><li>one</li><li>two <s>three</s></li></ul><ol start="3"><li>three</li></ol>',
    "<h2>Title</h2><blockquote><p>quoted</p></blockquote><pre>x = 1</pre>",
    '<table><thead><tr><th scope="col">a</th></tr></thead><tbody><tr><td colspan="2">1</td>'
    "</tr></tbody></table>",
    "<p>a &lt; b &amp;&amp; c &gt; d</p>",
]


def test_the_corpus_is_large_and_has_no_duplicates() -> None:
    """At least 50 distinct payloads, so a gap in the policy has many chances to show."""
    assert len(PAYLOADS) >= 50
    assert len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_the_sanitizer(payload: str) -> None:
    """Nothing that runs script, loads a resource or changes the page is left, and sanitizing
    again changes nothing (a second parse sees what the first produced: no mutation)."""
    clean = sanitize_html(payload)
    assert dangers(clean) == [], clean
    assert sanitize_html(clean) == clean


def test_no_payload_survives_storage_through_the_api(
    client: TestClient, new_tenant: Callable[[], NewTenant]
) -> None:
    """Each payload POSTed as an HTML note comes back sanitized from POST and GET alike (or,
    holding U+0000, is refused with a 422 naming the body)."""
    tenant = new_tenant()
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    survivors: dict[str, list[str]] = {}
    for payload in PAYLOADS:
        created = client.post(
            "/api/v1/notes",
            json={"title": "xss", "body": payload, "format": "html"},
            headers={**auth, "Idempotency-Key": f'"{uuid.uuid4()}"'},
        )
        if "\x00" in payload:  # refused before the sanitizer: no text may hold U+0000
            assert created.json()["errors"][0]["loc"] == "body.body", created.text
            continue
        assert created.status_code == 201, created.text
        stored = client.get(f"/api/v1/notes/{created.json()['id']}", headers=auth).json()
        assert stored["format"] == "html"
        assert stored["body"] == created.json()["body"]
        found = dangers(stored["body"])
        if found:
            survivors[payload] = found
    assert survivors == {}


@pytest.mark.parametrize("html", BENIGN)
def test_benign_formatting_survives_unchanged(html: str) -> None:
    """Paragraphs, emphasis, lists, headings, tables and http(s)/mailto links are kept as they
    are (links carry `rel="noopener noreferrer"` whatever was sent)."""
    assert sanitize_html(html) == html


def test_links_get_noopener_noreferrer_whatever_rel_was_sent() -> None:
    """A link's own `rel` and `target` are replaced: the opened page cannot reach this one."""
    clean = sanitize_html('<a href="https://example.com" rel="opener" target="_blank">x</a>')
    assert clean == '<a href="https://example.com" rel="noopener noreferrer">x</a>'


@pytest.mark.parametrize(
    ("url", "runnable"),
    [
        ("javascript:alert(1)", True),
        (" JavaScript:alert(1)", True),
        ("java\tscript:alert(1)", True),
        ("data:text/html,x", True),
        ("https://example.com/a:b", False),
        ("mailto:a@example.com", False),
        ("/relative:path", False),
    ],
)
def test_the_inspector_reads_url_schemes_like_a_browser(url: str, runnable: bool) -> None:
    """The checker itself: a scheme split by whitespace or in capitals is still a scheme."""
    assert runnable_url(url) is runnable


def test_the_inspector_finds_what_the_corpus_hides() -> None:
    """Without the sanitizer, the inspector flags every payload: the corpus tests can fail."""
    assert [payload for payload in PAYLOADS if not dangers(payload)] == []
