"""State shared by the demo steps: the output folder, the demo KEK and sample data."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from privacy.keys import Kek, Keyset


def sample_customers_path() -> Path:
    """The built-in sample: 500 synthetic customers (Faker zh_CN, seeded)."""
    return Path(str(resources.files("covault") / "data" / "customers.csv"))


def sample_customers() -> pa.Table:
    """The built-in sample as an Arrow table (every column read as text)."""
    path = sample_customers_path()
    names = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    return pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
    )


@dataclass
class DemoContext:
    """What the steps share."""

    out: Path
    kek: Kek
    keysets: dict[str, Keyset] = field(default_factory=dict)

    def keyset(self, template: str) -> Keyset:
        """A demo keyset of ``template``, created once and saved under OUT/keys/."""
        if template not in self.keysets:
            self.keysets[template] = Keyset.create(template)
            self.save_keyset(template)
        return self.keysets[template]

    def save_keyset(self, template: str) -> None:
        """Write the demo keyset of ``template`` (again, e.g. after a rotation)."""
        self.keysets[template].save(self.out / "keys" / f"{template.lower()}.json", self.kek)

    @property
    def ledger_path(self) -> Path:
        """The demo's ledger database."""
        return self.out / "ledger.db"
