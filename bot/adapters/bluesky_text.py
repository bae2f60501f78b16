"""What Bluesky needs built by the client from a post's text: facets and a record key.

Bluesky draws no link or hashtag by itself: the client marks them as *facets*,
each a span of the text in **UTF-8 byte** offsets (``byteStart`` inclusive,
``byteEnd`` exclusive). Links and tags are found the way Bluesky's own client
does (``@atproto/api`` ``detectFacets``): a URL or ``#tag`` starts the text or
follows white space, trailing punctuation is not part of it. The post's own
link is marked exactly as written, whatever it ends with.

The record key is a TID (13 characters of base32-sortable; the PDS and the
lexicon of ``app.bsky.feed.post`` want one), derived from the post so that a
retry of the same post names the same record and cannot make a second one.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import regex

LINK_FEATURE = "app.bsky.richtext.facet#link"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MAX_TAG = 64          # graphemes of a tag, without its "#" (the lexicon's maxGraphemes)

_LINK = regex.compile(r"(?:^|(?<=[\s(]))(https?://\S+)", regex.IGNORECASE)
# Bluesky's TAG_REGEX: "#" or "＃", then anything but space and invisible
# separators, with at least one character that is not a digit or punctuation.
_SEP = r"\s\u00AD\u2060\u200A\u200B\u200C\u200D\u20e2"
_TAG = regex.compile(rf"(?:^|(?<=\s))[#＃]((?!\ufe0f)[^{_SEP}]*[^\d\p{{P}}{_SEP}]+[^{_SEP}]*)")
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# Derived TIDs carry a time in this past window (2^45 µs, about 407 days from
# 2023-01-01): never in the future, and 55 bits of the hash in all.
TID_EPOCH_US = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp()) * 1_000_000
TID_SPAN_BITS = 45


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (possible in JSON feeds) replaced: they have
    no UTF-8 form, so they could neither be sent nor counted in bytes."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def facets(text: str, link: str = "") -> list[dict]:
    """The link and tag facets of ``text`` (already ``clean_text``), in text order."""
    spans = _link_spans(text, link) + _tag_spans(text)
    spans.sort(key=lambda s: s[0])
    return [_facet(text, start, end, feature) for start, end, feature in spans]


def _facet(text: str, start: int, end: int, feature: dict) -> dict:
    byte_start = len(text[:start].encode("utf-8"))
    byte_end = byte_start + len(text[start:end].encode("utf-8"))
    return {"index": {"byteStart": byte_start, "byteEnd": byte_end}, "features": [feature]}


def _link_spans(text: str, link: str) -> list[tuple[int, int, dict]]:
    spans = []
    for match in _LINK.finditer(text):
        start, uri = match.start(1), match.group(1)
        if link and uri.startswith(link):
            uri = link          # ours: exactly as written, even ending in "." or ")"
        else:
            uri = _trim_link(uri)
        spans.append((start, start + len(uri), {"$type": LINK_FEATURE, "uri": uri}))
    return spans


def _trim_link(uri: str) -> str:
    """A found URL without the punctuation that ends a sentence, as Bluesky trims it."""
    if uri[-1] in ".,;!?":
        uri = uri[:-1]
    if uri.endswith(")") and "(" not in uri:
        uri = uri[:-1]
    return uri


def _tag_spans(text: str) -> list[tuple[int, int, dict]]:
    spans = []
    for match in _TAG.finditer(text):
        tag = _TRAILING_PUNCTUATION.sub("", match.group(1).strip())
        if not tag or len(tag) > MAX_TAG:
            continue
        start = match.start()
        spans.append((start, start + 1 + len(tag), {"$type": TAG_FEATURE, "tag": tag}))
    return spans


# --- record keys

def record_key(*parts: str) -> str:
    """A TID derived from ``parts`` (account, post key, link): the same parts
    give the same key, so a retry names the same record."""
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).digest()
    offset = int.from_bytes(digest[:8], "big") % (1 << TID_SPAN_BITS)
    clock_id = int.from_bytes(digest[8:10], "big") % 1024
    return tid(TID_EPOCH_US + offset, clock_id)


def tid(microseconds: int, clock_id: int) -> str:
    """The TID of a time (µs since the epoch, 53 bits) and a clock id (10 bits)."""
    value = (microseconds << 10) | clock_id
    return "".join(TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def is_tid(value: str) -> bool:
    """True when ``value`` has TID syntax (13 characters, top bit clear)."""
    return (len(value) == 13 and value[0] in TID_ALPHABET[:16]
            and all(c in TID_ALPHABET for c in value))
