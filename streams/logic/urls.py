"""URLs that carry a credential are secrets. Pure.

An endpoint URL may hold what authenticates a call: a password in the userinfo
(`https://user:pw@crm.example/hook`), a token in the query (`?token=...`, `?sig=...`, any
query at all: we cannot tell which parameter is a key), or in the path of a provider whose
webhook URLs are their own credential (Slack's `hooks.slack.com/services/T../B../<secret>`,
Discord's `/api/webhooks/<id>/<token>`, Microsoft Teams' and Power Automate's signed URLs,
Google Chat's `?key=&token=`). Such a URL is never carried in a Kafka record: the sources
carry its `redacted` form, routing copies only that, and a sink reads the URL itself from
the platform database when it delivers (`connectors.sinks.credentials`), as it reads the
other secrets.

`redacted(url)` keeps what an operator needs to recognise the endpoint (scheme, host, port,
the path up to its first secret-looking segment) and replaces the rest with `REDACTED` (a
last path segment, or `?redacted` when the credential was in the userinfo or the query), so
`is_redacted` tells a sink to read the URL itself from the database.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

REDACTED = "redacted"
# hosts whose webhook URL path is the credential: everything after the prefix is secret
SECRET_PATHS: dict[str, str] = {
    "hooks.slack.com": "/services/",
    "hooks.slack-gov.com": "/services/",
    "discord.com": "/api/webhooks/",
    "discordapp.com": "/api/webhooks/",
    "chat.googleapis.com": "/v1/spaces/",
}
SECRET_HOST_SUFFIXES = (
    ".webhook.office.com", ".logic.azure.com", ".environment.api.powerplatform.com",
)  # fmt: skip
# a path segment that looks like a token: long, and mixed letters and digits (or base64-ish)
_TOKENISH = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-=.~+]{20,}$")


def carries_credential(url: str) -> bool:
    """True when `url` holds something that authenticates a call (see the module)."""
    parts = _split(url)
    if parts is None:
        return bool(url)  # unreadable: treat as secret, never carry it
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None:
        return True
    if parts.query or parts.fragment:
        return True
    if _secret_prefix(host) is not None or host.endswith(SECRET_HOST_SUFFIXES):
        return True
    return any(_TOKENISH.match(segment) for segment in parts.path.split("/"))


def redacted(url: str) -> str:
    """`url` without its credential: no userinfo, query or fragment, the path cut at the
    provider's secret prefix or at the first token-like segment; `url` itself when it
    carries none."""
    if not carries_credential(url):
        return url
    parts = _split(url)
    if parts is None:
        return REDACTED
    host = (parts.hostname or "").lower()
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    prefix = _secret_prefix(host)
    if prefix is not None and parts.path.startswith(prefix):
        path = prefix + REDACTED
    elif host.endswith(SECRET_HOST_SUFFIXES):
        path = "/" + REDACTED
    else:
        kept: list[str] = []
        for segment in parts.path.split("/"):
            if _TOKENISH.match(segment):
                kept.append(REDACTED)
                break
            kept.append(segment)
        path = "/".join(kept)
        if not path.endswith(REDACTED):  # the credential was around the path: say so
            path += "?" + REDACTED
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts if parts.scheme and parts.netloc else None


def _secret_prefix(host: str) -> str | None:
    return SECRET_PATHS.get(host)


@functools.lru_cache(maxsize=4096)  # a sink asks it of the same few URLs per delivery
def is_redacted(url: str) -> bool:
    """True for a URL `redacted` made: its credential was left in the database."""
    parts = _split(url)
    if parts is None:
        return url == REDACTED
    path = parts.path.rstrip("/")
    return path.endswith("/" + REDACTED) or parts.query == REDACTED or parts.fragment == REDACTED
