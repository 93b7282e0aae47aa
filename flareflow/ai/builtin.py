"""Importing this module registers the built-in ``ai-prompt`` workflow in the default registry: the
generated Worker entry imports it in projects that configure ``[tool.flareflow.ai]``."""

from ..engine.registry import default_registry
from .prompt import register

register(default_registry)
