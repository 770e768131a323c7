"""Email bodies from the Jinja2 templates in `templates/`.

Each template name (the record's `template`: form_response, journey_progress,
wedding_date_change, client_profile_update, generic) has a ``<name>.txt.j2`` and a
``<name>.html.j2``; an unknown name falls back to ``generic``. HTML templates autoescape every
variable; both use StrictUndefined, so a variable a template needs and the record lacks is an
error (`TemplateRefused`), never an empty hole. Templates are read from the package folder
once and cached by Jinja2; rendering itself has no other I/O.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from streams.errors import PoisonMessage

TEMPLATES_DIR = Path(__file__).parent / "templates"
FALLBACK = "generic"
SAFE_LINK_SCHEMES = ("https://", "http://")


class TemplateRefused(PoisonMessage):
    """The record cannot be rendered (a variable its template needs is missing, or the
    template is broken). The message names the template, never a variable's value."""


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one template environment: autoescape for ``*.html.j2``, StrictUndefined."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the package's files: no stat() per render to see if they changed
    )


@lru_cache(maxsize=1)
def template_names() -> tuple[str, ...]:
    """Names with both a text and an HTML template (layouts starting with ``_`` excluded);
    listed once (it was a directory listing per message)."""
    names = {p.name.split(".", 1)[0] for p in TEMPLATES_DIR.glob("*.j2")}
    return tuple(
        sorted(
            n
            for n in names
            if not n.startswith("_")
            and (TEMPLATES_DIR / f"{n}.txt.j2").exists()
            and (TEMPLATES_DIR / f"{n}.html.j2").exists()
        )
    )


def resolve(template: str) -> str:
    """The template to use for a record's `template` value: itself when known, else generic."""
    return template if template in template_names() else FALLBACK


def render(template: str, subject: str, variables: dict[str, str]) -> tuple[str, str]:
    """(plain text, HTML) for the record. Raises TemplateRefused when rendering fails.

    A `link` variable that is not an http(s) URL is dropped (no ``javascript:`` hrefs)."""
    name = resolve(template)
    context: dict[str, str] = {**variables, "subject": subject}
    link = context.get("link", "")
    if link and not link.lower().startswith(SAFE_LINK_SCHEMES):
        context["link"] = ""
    env = environment()
    try:
        text = env.get_template(f"{name}.txt.j2").render(context)
        html = env.get_template(f"{name}.html.j2").render(context)
    except jinja2.UndefinedError as exc:
        # StrictUndefined's message names the variable (a key, not a value): safe to keep.
        raise TemplateRefused(f"template {name}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRefused(f"template {name} failed: {type(exc).__name__}") from None
    return text, html
