"""Writing the gateway's XML documents: Jinja2 templates, text any XML can carry, UTC times.

Each document the gateway sends (the acknowledgement, the report, the status-returns) is a Jinja2 template of XML:
its text as it is sent, one element a line, in the module that fills it, compiled once at import (xml_template) in
the environment XML, made for XML:

- every value is escaped (autoescape), and first made text XML 1.0 can carry (xml_text): no value, a supplier's
  file name with <, &, a quote or a control byte, can make a document ill-formed; a carriage return is written
  &#13;, so that a parser reads it back rather than a line feed;
- None is written as nothing, and an element whose value may be absent is written in `{% if ... is not none %}`:
  an absent value is an absent element, not an empty one;
- a name the template uses and was not given is an error (StrictUndefined), not an empty text;
- a line holding only a block tag (`{% if %}`, `{% for %}`) leaves nothing in the document: the document keeps the
  template's lines;
- times are written in UTC with `| xml_datetime`;
- a part written at several depths of a document is a macro, placed with `| nested(width)`: its lines indented as
  where it goes; a part shared by two documents is a template of its own, included.

The values known at import (namespaces, the codes the gateway always writes, a template included) are given to
xml_template, as the template's globals.

>>> REPORT = xml_template('''<report xmlns="{{ namespace }}">
...   {% for error in errors %}
...   <error>
...     <rule>{{ error.rule }}</rule>
...     {% if error.line is not none %}
...     <line>{{ error.line }}</line>
...     {% endif %}
...   </error>
...   {% endfor %}
... </report>
... ''', namespace="urn:example")
>>> print(REPORT.render(errors=[{"rule": "A<B & \\"C\\"\\x01", "line": None}]))
<report xmlns="urn:example">
  <error>
    <rule>A&lt;B &amp; &#34;C&#34;</rule>
  </error>
</report>
<BLANKLINE>
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from jinja2 import Environment, StrictUndefined, Template
from markupsafe import Markup, escape

# Characters outside XML 1.0's Char production: lxml refuses them, and they do reach us through
# supplier file names (control bytes, surrogate escapes) and libxml2 messages.
_ILLEGAL_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """The value as text that XML 1.0 can carry: illegal characters are dropped."""
    return _ILLEGAL_XML_CHARS.sub("", str(value))


def xml_datetime(moment: datetime) -> str:
    """xs:dateTime in UTC with Z; naive values are UTC already (the models store them so)."""
    return utc(moment).isoformat(timespec="seconds") + "Z"


def utc(moment: datetime) -> datetime:
    """moment in UTC; naive values are UTC already (the models store them so)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _finalize(value: object) -> object:
    """What a template writes of value, before autoescape: nothing for None, the text XML can carry, and a carriage
    return as its reference (escaped here, since autoescape leaves it as it is)."""
    if value is None:
        return ""
    if isinstance(value, Markup):  # a macro's output: escaped already
        return value
    text = value if type(value) is str else str(value)
    if text.isascii() and text.isprintable():  # the common case: nothing to drop
        return text
    text = xml_text(text)
    return Markup(str(escape(text)).replace("\r", "&#13;")) if "\r" in text else text


def _nested(fragment: str, width: int) -> Markup:
    """A macro's output placed where a line of the template calls it: its lines after the first indented by width (as
    jinja2's indent filter does, at a thirtieth of its cost: no Markup operation a line). Anything but a macro's
    output, escaped already, is escaped first."""
    return Markup(str.replace(escape(fragment), "\n", "\n" + " " * width))


XML = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                  undefined=StrictUndefined, finalize=_finalize, auto_reload=False)
XML.filters["xml_datetime"] = xml_datetime
XML.filters["nested"] = _nested


def xml_template(source: str, **known: object) -> Template:
    """source compiled in XML, with the values known at import (a namespace, a code the gateway always writes, a
    template it includes) as its globals."""
    return XML.from_string(source, globals=known)
