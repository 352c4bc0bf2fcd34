"""Model sources (timm, Hugging Face Hub, local files, bundled packages, the built-in catalog)."""

from .base import Skip, Source, get_source, source_for_scheme, sources

__all__ = ["Skip", "Source", "get_source", "source_for_scheme", "sources"]
