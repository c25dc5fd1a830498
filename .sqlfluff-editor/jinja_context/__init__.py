"""What dbt puts in a model's Jinja context, for sqlfluff's jinja templater (see ../config).

Only what the project's models and macros use; each renders as it would for the DuckDB
dev target.
"""

from __future__ import annotations

import os

from jinja2 import pass_context


class _Adapter:
    @staticmethod
    @pass_context
    def dispatch(context, macro_name: str, macro_namespace: str | None = None):
        """The duckdb__ variant of a project macro, else its default__ variant."""
        for prefix in ("duckdb__", "default__"):
            macro = context.get(prefix + macro_name)
            if macro is not None:
                return macro
        raise KeyError(f"no duckdb__ or default__ variant of macro {macro_name!r} in macros/")


class _CrossDatabaseMacros:
    """dbt's own cross-database macros (dbt.hash and friends), as dbt-duckdb renders them."""

    @staticmethod
    def hash(field: str) -> str:
        return f"md5(cast({field} as varchar))"

    @staticmethod
    def listagg(measure: str, delimiter_text: str = "','", order_by_clause: str | None = None,
                limit_num: int | None = None) -> str:
        return f"string_agg({measure}, {delimiter_text} {order_by_clause or ''})"

    @staticmethod
    def datediff(first_date: str, second_date: str, datepart: str) -> str:
        return f"date_diff('{datepart}', {first_date}, {second_date})"


class _Target:
    type = "duckdb"
    name = "dev"
    schema = "main"
    database = "warehouse"


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise RuntimeError(message)

    @staticmethod
    def warn(message: str) -> str:
        return ""


def env_var(name: str, default: str | None = None) -> str:
    return os.environ.get(name, default if default is not None else "")


adapter = _Adapter()
dbt = _CrossDatabaseMacros()
target = _Target()
exceptions = _Exceptions()
execute = True
project_name = "survey_warehouse"
