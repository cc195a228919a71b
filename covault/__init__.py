"""The covault application shell: the ``covault`` command line and ``covault demo``.

Imports ``privacy``, ``masking`` and ``federated``; nothing imports it.
"""

__version__ = "0.1.0"
