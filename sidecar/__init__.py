"""llm-sidecar: an OpenAI-compatible LLM gateway with pip-installable provider plugins.

Plugin authors need only what this module exports: ``hookimpl`` to mark hook
implementations, ``Provider`` to subclass and ``ProviderCall`` for what a provider is handed.
"""

from sidecar.hookspecs import hookimpl
from sidecar.errors import ProviderError
from sidecar.provider import CAPABILITIES, NO_AMBIENT_CREDENTIALS, Provider, ProviderCall

__version__ = "0.1.0"
__all__ = ["CAPABILITIES", "NO_AMBIENT_CREDENTIALS", "Provider", "ProviderCall", "ProviderError", "hookimpl", "__version__"]
