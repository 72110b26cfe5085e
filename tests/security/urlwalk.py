"""Walk the URL resolver so that every new URL is covered by the security tests automatically."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# Django's own admin has its own permission system (is_staff) and is tested by Django.
SKIPPED_NAMESPACES = {"admin"}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name"
    pattern: str  # the joined pattern text, e.g. "dashboards/teams/<uuid:public_id>/"
    kwargs: tuple[str, ...]  # the names of the captured arguments

    def path(self, values: dict[str, str]) -> str | None:
        """A concrete path, or None when a needed value is not given."""
        if any(k not in values for k in self.kwargs):
            return None
        return reverse(self.name, kwargs={k: values[k] for k in self.kwargs})


def _pattern_kwargs(pattern: str) -> tuple[str, ...]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", pattern) + re.findall(r"\(\?P<(\w+)>", pattern)
    return tuple(dict.fromkeys(names))


def routes() -> list[Route]:
    """Every named URL (format-suffix variants dropped), in resolver order."""
    found: dict[str, Route] = {}

    def walk(patterns, prefix: str, namespace: str | None) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                ns = entry.namespace
                if ns in SKIPPED_NAMESPACES:
                    continue
                joined = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                walk(entry.url_patterns, prefix + str(entry.pattern), joined)
            elif isinstance(entry, URLPattern):
                pattern = prefix + str(entry.pattern)
                kwargs = _pattern_kwargs(pattern)
                if "format" in kwargs:
                    continue  # ".json" suffix variants behave like their base route
                name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
                found.setdefault(name, Route(name=name, pattern=pattern, kwargs=kwargs))

    walk(get_resolver().url_patterns, "", None)
    return list(found.values())
