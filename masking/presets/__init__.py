"""Named, editable policy presets shipped with covault.

``jrt0171``: display, analytics and partner-export rules for personal financial
information after JR/T 0171-2020 (C3 never shown; C2 masked in display views). The
display masks follow industry convention (the standard's Appendix A is informative):
confirm them against your copy of the standard, and copy the YAML to edit it
(``covault mask preset jrt0171 > my-policy.yaml``).
"""

from __future__ import annotations

from importlib import resources

from privacy.errors import PolicyError

__all__ = ["PRESETS", "preset_text"]

#: Names of the presets shipped with covault.
PRESETS: tuple[str, ...] = ("jrt0171",)


def preset_text(name: str) -> str:
    """The YAML text of preset ``name``; :meth:`masking.policy.Policy.preset` parses it."""
    if name not in PRESETS:
        raise PolicyError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return (resources.files(__name__) / f"{name}.yaml").read_text(encoding="utf-8")
