"""Model sources (timm, Hugging Face Hub, local files, bundled packages, the built-in catalog, plugins).

:mod:`.base` holds the protocol, the discovery of installed sources (entry points ``tlreg.sources``)
and ref parsing; each other module is one built-in source.
"""

from .base import (
    Skip,
    Source,
    SourcePluginWarning,
    current_revision,
    get_source,
    parse_ref,
    schemes,
    source_for_scheme,
    source_names,
    sources,
)

__all__ = [
    "Skip",
    "Source",
    "SourcePluginWarning",
    "current_revision",
    "get_source",
    "parse_ref",
    "schemes",
    "source_for_scheme",
    "source_names",
    "sources",
]
