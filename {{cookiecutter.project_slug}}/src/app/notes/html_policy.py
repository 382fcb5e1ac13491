"""What an HTML note may contain: an explicit allow-list, enforced by nh3 before a body is stored.

nh3 binds ammonia (Rust, html5ever): it parses like a browser, so mutation-XSS shapes that fool a
regex or a lenient parser are rebuilt as the browser would see them and then filtered. bleach, the
older choice, is deprecated. Nothing outside these sets survives: no `style`, `class` or `id`
(no CSS injection, no clobbering of the page's own ids), no `on*` handler, no image or media
(no tracking pixels, no request from the reader's browser to a URL the writer chose), no form,
frame, SVG or MathML. Links keep only absolute http, https and mailto URLs and always get
`rel="noopener noreferrer"`. Widening the list is a security decision: add a test to
tests/notes/test_xss_corpus.py with it (docs/api.md, "HTML notes").
"""

from __future__ import annotations

from typing import Final

import nh3

ALLOWED_TAGS: Final = frozenset(
    {
        *("p", "br", "hr", "div", "span", "blockquote", "pre", "code", "kbd", "samp"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
        *("strong", "b", "em", "i", "u", "s", "del", "ins", "mark", "small", "sub", "sup"),
        *("abbr", "q", "ul", "ol", "li", "dl", "dt", "dd", "a"),
        *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"),
    }
)
ALLOWED_ATTRIBUTES: Final = {
    "a": frozenset({"href", "title"}),
    "abbr": frozenset({"title"}),
    "ol": frozenset({"start"}),
    "th": frozenset({"colspan", "rowspan", "scope"}),
    "td": frozenset({"colspan", "rowspan"}),
}
ALLOWED_URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
LINK_REL: Final = "noopener noreferrer"
# Dropped with everything inside them: their content is code, a document or markup, never text a
# reader wrote for the note. Any other tag outside the allow-list loses its tags, keeps its text.
DROPPED_WITH_CONTENT: Final = frozenset(
    {
        *("script", "style", "template", "noscript", "iframe", "frame", "frameset"),
        *("object", "embed", "applet", "svg", "math", "textarea", "select", "title"),
        *("xmp", "noembed", "noframes", "plaintext"),
    }
)

_CLEANER: Final = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # A relative URL resolves against whichever page shows the note: keep only absolute ones.
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


def sanitize_html(body: str) -> str:
    """`body` with everything outside the allow-list removed; safe to put into a page as HTML."""
    return _CLEANER.clean(body)
