"""The replica-extracts contract has one source, orchestrate/contract.py: the Snowflake
loader's copy (a dbt macro) is generated from it. tests/test_snowflake.py checks that the
raw tables built from that macro match the DuckDB ingester's."""

from __future__ import annotations

from conftest import PROJECT_DIR

from orchestrate import contract


def test_snowflake_contract_macro_is_generated_from_contract_py():
    committed = (PROJECT_DIR / contract.SNOWFLAKE_MACRO).read_text(encoding="utf-8")
    assert committed == contract.snowflake_contract_macro(), (
        f"{contract.SNOWFLAKE_MACRO} differs from orchestrate/contract.py: "
        "run `python -m orchestrate.contract` and commit the result"
    )
    for table in contract.TABLES.values():
        assert f"'{table.name}': {{" in committed
