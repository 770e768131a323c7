"""email's default policy, with each header class made once.

The standard library's `HeaderRegistry` builds a new class (``type(...)``) for every header
it parses or sets: parsing one multipart message made about 20 of them (a quarter of the
cost in `HeaderRegistry.__getitem__` alone). The classes depend only on the header's name,
so `POLICY` keeps them; it is `email.policy.default` otherwise, and a message built or
parsed with it is the same. The SMTP capture server (`wedsync fake smtp`) parses with it;
the email sink no longer builds `EmailMessage`s at all (`connectors/sinks/email/mime.py`).
"""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry

_MAX_NAMES = 256  # header names seen in parsed mail are the sender's choice: bound the cache


class _Headers(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = super().__getitem__(name)
            if len(self._made) < _MAX_NAMES:
                self._made[key] = made
        return made


POLICY = email.policy.default.clone(header_factory=_Headers())
