"""How the tool words things for people: counts (one helper, so every message counts the same way),
and names someone else chose, shown as typed in the app's Markdown messages."""
from __future__ import annotations

import re

from core.bounded import printable


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun that agrees with it, with thousands separators: "1 video", "1,234 videos"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


# What makes Markdown out of plain text, for Streamlit: links and images ([...](...)), code, emphasis,
# math ($), HTML, headings, tables, strikes and escapes. Parentheses, a colon before a space and the
# like are left: they build nothing alone, and messages keep reading as written.
_MARKDOWN_SYNTAX = re.compile(r"[\\`*_\[\]<>#$~|]")
# Streamlit finds :red[...], :material/home:, a bare http(s):// or www. and an e-mail address in the
# text whatever escapes the Markdown held (seen in Chromium), also right after an underscore: a word
# joiner (U+2060, invisible) after the colon, the scheme, "www" or the "@" stops it.
_SHORTCODE_OR_BARE_LINK = re.compile(r"(?i)(:(?=[a-z])|https?(?=://)|www(?=\.)|@(?=\w))")
WORD_JOINER = "\u2060"


def markdown_literal(text: object) -> str:
    """``text`` someone else named (a video, a folder, a dataset, an error that quotes them) for a
    Markdown message, shown as typed: no link, no image fetched from another host, no heading, no
    :color[...]; characters that are not printable become their escapes. A web or e-mail address in
    it (and a colon before a letter) carries an invisible word joiner after its scheme, "www" or
    "@", which is what keeps it unlinked (and comes along when the text is copied)."""
    text = _MARKDOWN_SYNTAX.sub(r"\\\g<0>", printable(str(text)))
    text = _SHORTCODE_OR_BARE_LINK.sub(lambda m: m.group(1) + WORD_JOINER, text)
    text = re.sub(r"^([-+])", r"\\\1", text)  # no list item
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # nor a numbered one


def markdown_code(text: object) -> str:
    """``text`` as inline code in a Markdown message, whatever backticks it holds: fenced by one
    backtick more than its longest run of them (CommonMark's rule), padded where it starts or ends
    with one."""
    text = printable(str(text))
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"
