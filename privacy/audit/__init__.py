"""Query audit: canonical query events, log adapters, SQL analysis and the schema catalogue.

The input side of the query-audit pipeline:

* :mod:`privacy.audit.events` — :class:`QueryEvent`, the canonical access event.
* :mod:`privacy.audit.adapters` — JSON Lines, CSV and pgAudit (csvlog / stderr) readers
  yielding ``(line_no, QueryEvent | MalformedLine)``.
* :mod:`privacy.audit.catalog` — which columns are JR/T C1/C2/C3 and which are customer keys.
* :mod:`privacy.audit.sql` — fingerprinting and cached SQL analysis (sqlglot, lazily).

Importing this package does not import sqlglot.
"""

from privacy.audit.catalog import Catalog, ColumnInfo
from privacy.audit.events import MalformedLine, QueryEvent

__all__ = ["Catalog", "ColumnInfo", "MalformedLine", "QueryEvent"]
