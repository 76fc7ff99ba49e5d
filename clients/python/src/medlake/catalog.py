"""The catalog as a researcher sees it: datasets with one's access level, and a dataset's
dictionary (columns and how each is de-identified, hospitals, months, codes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _count(value: Any) -> int | None:
    """A count of the catalog: a number, or None where the server withholds it."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Dataset:
    """A dataset, with your access level: `aggregate`, `row`, or None (ask for access)."""

    id: str
    title: str
    description: str
    access: str | None
    data_use_terms: str

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Dataset:
        return cls(
            id=body["id"],
            title=body["title"],
            description=body["description"],
            access=body.get("access"),
            data_use_terms=body.get("dataUseTerms", ""),
        )


@dataclass(frozen=True)
class DictionaryColumn:
    """A column a query may name, its type, and what de-identification did to it."""

    name: str
    type: str
    treatment: str


@dataclass(frozen=True)
class Code:
    """A code of the dataset's code column. `rows` and `patients` are None where the server
    withholds them (a small count, or a dataset whose release ledger would be bypassed)."""

    code: str
    label: str | None
    unit: str | None
    rows: int | None
    patients: int | None


@dataclass(frozen=True)
class Rule:
    """A disclosure rule that ran, in plain words, and how many cells or groups it affected."""

    rule: str
    description: str
    affected: int

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Rule:
        return cls(body["rule"], body["description"], int(body.get("affected", 0)))


@dataclass(frozen=True)
class Dictionary:
    """A dataset's data dictionary. `codes` holds the codes that matched the search."""

    id: str
    title: str
    description: str
    columns: list[DictionaryColumn]
    hospitals: list[str]
    months: list[str]
    releases: int
    threshold: int
    codes: list[Code]
    rules: list[Rule]
    codes_matching: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Dictionary:
        return cls(
            id=body["id"],
            title=body["title"],
            description=body["description"],
            columns=[
                DictionaryColumn(c["name"], c["type"], c["treatment"]) for c in body["columns"]
            ],
            hospitals=list(body["hospitals"]),
            months=list(body["months"]),
            releases=int(body["releases"]),
            threshold=int(body["threshold"]),
            codes=[
                Code(
                    c["code"],
                    c.get("label"),
                    c.get("unit"),
                    _count(c.get("rows")),
                    _count(c.get("patients")),
                )
                for c in body["codes"]
            ],
            rules=[Rule.from_api(rule) for rule in body.get("rules", [])],
            codes_matching=int(body.get("codesMatching", len(body["codes"]))),
            raw=body,
        )

    def to_pandas(self) -> Any:
        """The codes as a DataFrame (code, label, unit, rows, patients; withheld counts <NA>)."""
        import pandas as pd

        frame = pd.DataFrame(
            [vars(code) for code in self.codes],
            columns=["code", "label", "unit", "rows", "patients"],
        )
        return frame.astype({"rows": "Int64", "patients": "Int64"})
