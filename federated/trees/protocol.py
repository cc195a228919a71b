"""Message actions of the federated trees (besides the horizontal app's setup ones).

=====================  ===========================================================
``query.gbdt_sketch``  the party's fine-grid histograms of its training rows and its
                       row and event counts, protected for secure sum
``query.gbdt_setup``   store the global bins and the base score; reply: bins digest
``query.gbdt_level``   apply the tree finished last (once), then the gradient and
                       hessian histograms of the requested nodes of one level (one
                       vector for the whole level) and, when asked, the training and
                       validation loss sums; protected for secure sum
``query.gbdt_local``   the federated model and a local-only one scored on the party's
                       own test rows
=====================  ===========================================================
"""

from __future__ import annotations

__all__ = ["SKETCH", "SETUP", "LEVEL", "LOCAL"]

SKETCH = "query.gbdt_sketch"
SETUP = "query.gbdt_setup"
LEVEL = "query.gbdt_level"
LOCAL = "query.gbdt_local"
