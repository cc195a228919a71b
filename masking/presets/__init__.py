"""Named, editable policy presets shipped with covault.

``jrt0171``: display, analytics and partner-export rules for personal financial
information after JR/T 0171-2020 (C3 never shown; C2 masked in display views). The
display masks follow industry convention (the standard's Appendix A is informative):
confirm them against your copy of the standard, and copy the YAML to edit it
(``covault mask preset jrt0171 > my-policy.yaml``).
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from privacy.errors import PolicyError

if TYPE_CHECKING:
    from masking.policy import Policy

__all__ = ["PRESETS", "preset_text", "load_preset"]

#: Names of the presets shipped with covault.
PRESETS: tuple[str, ...] = ("jrt0171",)


def preset_text(name: str) -> str:
    """The YAML text of preset ``name``."""
    if name not in PRESETS:
        raise PolicyError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return (resources.files(__name__) / f"{name}.yaml").read_text(encoding="utf-8")


def load_preset(name: str, _seen: tuple[str, ...] = ()) -> Policy:
    """Preset ``name`` as a validated :class:`~masking.policy.Policy`."""
    from masking.policy import Policy

    if name in _seen:
        raise PolicyError(f"presets extend each other in a cycle: {' -> '.join(_seen + (name,))}")
    return Policy.from_yaml(preset_text(name), source=f"preset:{name}")
