"""Link previews for chat apps (U11): an OpenGraph/Twitter-card page for
crawlers, and the oEmbed document it links to."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

DEFAULT_BOT_TOKENS = ("Discordbot", "Twitterbot", "facebookexternalhit", "Slackbot",
                      "TelegramBot", "WhatsApp", "LinkedInBot", "Embedly")
EMBED_CSP = "default-src 'none'"


def is_bot(user_agent: str | None, tokens: tuple[str, ...]) -> bool:
    """True when the User-Agent contains one of the bot tokens (case-insensitive)."""
    if not user_agent:
        return False
    ua = user_agent.lower()
    return any(token.lower() in ua for token in tokens)


def embeddable(content_type: str) -> bool:
    """Raster images (not SVG) and videos get preview pages."""
    media = content_type.split(";", 1)[0].strip().lower()
    return (media.startswith("image/") and media != "image/svg+xml") or media.startswith("video/")


def _meta(prop: str, value: str | int, attr: str = "property") -> str:
    return f'<meta {attr}="{escape(prop)}" content="{escape(str(value))}">'


def embed_page(*, item_id: str, url: str, content_type: str, width: int | None,
               height: int | None, site_name: str, oembed_url: str) -> bytes:
    """The preview page: no script, every value escaped."""
    media = content_type.split(";", 1)[0].strip().lower()
    raw = url + "?embed=raw"
    tags = [_meta("og:url", url), _meta("og:title", item_id), _meta("og:site_name", site_name)]
    if media.startswith("video/"):
        tags += [_meta("og:type", "video.other"), _meta("og:video", raw),
                 _meta("og:video:secure_url", raw), _meta("og:video:type", media)]
        if width and height:
            tags += [_meta("og:video:width", width), _meta("og:video:height", height)]
        tags += [_meta("twitter:card", "player", "name"),
                 _meta("twitter:player:stream", raw, "name")]
        if width and height:
            tags += [_meta("twitter:player:width", width, "name"),
                     _meta("twitter:player:height", height, "name")]
    else:
        tags += [_meta("og:type", "website"), _meta("og:image", raw),
                 _meta("og:image:type", media)]
        if width and height:
            tags += [_meta("og:image:width", width), _meta("og:image:height", height)]
        tags += [_meta("twitter:card", "summary_large_image", "name"),
                 _meta("twitter:image", raw, "name")]
    tags.append(f'<link rel="alternate" type="application/json+oembed" href="{escape(oembed_url)}">')
    head = "\n".join(tags)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<title>{escape(item_id)}</title>\n{head}\n</head>"
        f"<body><p><a href=\"{escape(raw)}\">{escape(item_id)}</a></p></body></html>\n"
    ).encode()


def oembed_url(api_base: str, item_url: str) -> str:
    return f"{api_base}/api/oembed?url={quote(item_url, safe='')}"


def oembed_document(*, item_id: str, url: str, content_type: str, width: int | None,
                    height: int | None, provider_name: str, provider_url: str) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    doc: dict[str, Any] = {"version": "1.0", "type": "link", "provider_name": provider_name,
                           "provider_url": provider_url, "title": item_id}
    if media.startswith("image/") and media != "image/svg+xml" and width and height:
        doc.update(type="photo", url=url + "?embed=raw", width=width, height=height)
    return doc
