"""A starter masking policy from a column scan.

The policy language itself lives in ``masking.policy``; this writer only emits a
plausible first draft for a person to review. Everything is in :func:`suggest_policy`,
so the output format can be adjusted in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from masking.pii.detect import ColumnScan

__all__ = ["suggest_policy"]


def suggest_policy(scans: Sequence[ColumnScan], *, source: str = "") -> str:
    """Return a starter policy (YAML text) for the scanned columns.

    Detected columns get a rule selecting them by name with their PII type (the
    ``jrt0171`` preset picks the operator for that type); columns with no detected PII are
    listed commented out, so they stay dropped (``default: drop``) until someone decides
    to keep them. Text columns with identifiers inside (``ColumnScan.in_text``) get a
    ``redact_pii`` rule for the types found.

    Warnings
    --------
    Detection is sample-based: review every rule before use.
    """
    origin = f" from {' '.join(source.split())}" if source else ""
    lines = [
        f"# Starter masking policy suggested by `covault scan`{origin}.",
        "# REVIEW BEFORE USE: detection is a sample-based heuristic. Check every rule, choose",
        "# operators and keys, and keep only the columns the recipient needs.",
        "version: 1",
        "extends: jrt0171",
        "default: drop",
        "columns:",
    ]
    kept = [s for s in scans if s.pii != "none"]
    text = [s for s in scans if s.pii == "none" and s.in_text is not None and s.in_text.counts]
    rest = [s for s in scans if s.pii == "none" and s not in text]
    for s in kept:
        lines.append(
            f"  # detected {s.pii} (confidence {s.confidence:.2f}, JR/T 0171 {s.jrt_class})"
        )
        lines.append(f"  - name: {json.dumps(s.name, ensure_ascii=False)}")
        lines.append(f"    pii: {s.pii}")
    for s in text:
        assert s.in_text is not None
        found = ", ".join(f"{t} {n}" for t, n in s.in_text.counts.items())
        lines.append(f"  # PII inside the text ({s.in_text.cells_with_pii} of {s.in_text.cells} "
                     f"sampled cells): {found}")
        lines.append(f"  - name: {json.dumps(s.name, ensure_ascii=False)}")
        lines.append("    operator: redact_pii")
        lines.append(f"    options: {{types: [{', '.join(s.in_text.counts)}]}}")
    for s in rest:
        lines.append("  # no PII detected; dropped by default. Uncomment to keep as is:")
        lines.append(f"  # - name: {json.dumps(s.name, ensure_ascii=False)}")
        lines.append("  #   operator: keep")
    if not kept and not text:
        lines[-1 - 3 * len(rest)] = "columns: []"
    return "\n".join(lines) + "\n"
