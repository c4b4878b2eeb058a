"""Registry population figures as the model's denominators table."""

from __future__ import annotations

from epibridge.model.schema import DENOMINATORS
from epibridge.pipeline.denominators import registry_denominators
from epibridge.registry import geography


def test_denominators_follow_the_schema_and_the_registry() -> None:
    table = registry_denominators()
    assert table.schema == DENOMINATORS
    assert table.num_rows == len(geography.population())
    rows = table.to_pylist()
    brazil = [r for r in rows if r["country"] == "BRA"]
    assert brazil
    # Microregions are placed under their mesoregion and state.
    assert all(r["area_level"] == 3 and r["admin1"] and r["admin2"] for r in brazil)
    assert all(r["population"] > 0 for r in rows)


def test_denominators_for_chosen_countries() -> None:
    table = registry_denominators(["PHL"])
    assert set(table.column("country").to_pylist()) == {"PHL"}
    assert set(table.column("year").to_pylist()) == {2015, 2024}
