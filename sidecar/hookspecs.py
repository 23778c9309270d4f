"""Hook specifications of llm-sidecar, in the style of pluggy's eggsample.

A plugin is a module (found through the ``llm_sidecar`` entry point group) whose functions are
marked with :data:`hookimpl`::

    from sidecar import hookimpl

    @hookimpl
    def sidecar_providers():
        return [MyProvider()]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
]

if TYPE_CHECKING:
    from sidecar.provider import Provider

PROJECT_NAME = "llm_sidecar"
"""The pluggy project name, which is also the setuptools entry point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def sidecar_providers() -> list[Provider]:
    """Return the providers this plugin offers.

    Each :class:`sidecar.Provider` has a unique ``name``: the prefix a deployment's
    ``litellm_params.model`` starts with (``openai`` in ``openai/gpt-4o-mini``). The results of
    every plugin are merged; two plugins offering the same name is a start-up error.
    """
