"""Complementary suppression of result cells, in pandas/numpy: the rule the project
defines in SQL (models/intermediate/results/int_result_cells_suppressed and
int_result_relations_listed), written again from its description.

Two readers: the pandas reference of the results marts (orchestrate/reference_pandas.py,
timed by `bench` and checked against the marts) and the tests (tests/disclosure.py adds
the attacker that tries to undo it; tests/test_survey_stats.py checks the marts with it).

Cells are rows with CELL_KEY (kind `topic` or `item`, item_id '' on topic cells),
district_id and n (true respondents).

- relations(): the linear relations between cells an attacker subtracts along
  (subgroup: a category's values add up to the `all` cell; level: schools add up to
  their district; item: a topic's answers are the sums of its items');
- suppress_cells(): primary suppression below min_n, then complementary suppression,
  pass after pass, until every relation holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CELL_KEY = ["kind", "school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
            "item_id", "subgroup_category", "subgroup_value"]
# The order complementary suppression picks cells in (smallest first): int_result_cells_ranked.
RANK_ORDER = ["n", "kind", "school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
              "item_id", "subgroup_category", "subgroup_value"]
REASONS = {0: "primary", 1: "complementary_subgroup", 2: "complementary_level", 3: "complementary_item"}
KIND_CODE = {"subgroup": 1, "level": 2, "item": 3}
RELATION_KINDS = np.array(["", "subgroup", "level", "item"], dtype=object)
_SLOTS = 16  # relation id = 16 * its total's cell + slot (subgroup categories 1..13, level 14, item 15)


def _codes(*columns: pd.Series) -> list[np.ndarray]:
    """Integer codes of several columns over one shared vocabulary (null: -1)."""
    codes, _ = pd.factorize(pd.concat(columns, ignore_index=True))
    bounds = np.cumsum([0] + [len(c) for c in columns])
    return [codes[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _group(columns: list[np.ndarray]) -> np.ndarray:
    """One integer per distinct combination of the code columns (all of equal length)."""
    frame = pd.DataFrame({str(i): c for i, c in enumerate(columns)})
    return frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()


def relations(cells: pd.DataFrame) -> pd.DataFrame:
    """Every linear relation between cells, as memberships: relation (an integer named by
    its total cell and its kind), relation_kind, cell (row position in `cells`), whether
    the cell is the relation's total. Relations exist only where they have parts; a part
    whose total does not exist (or whose key is null) is in no relation, as the SQL's
    inner joins have it."""
    c = cells.reset_index(drop=True)
    code = {col: _codes(c[col])[0] for col in CELL_KEY if col != "entity_id"}
    entity, district = _codes(c.entity_id, c.district_id)
    cell = np.arange(len(c))
    parts = []

    def add(kind: str, slot: np.ndarray, key: np.ndarray, is_total: np.ndarray, is_part: np.ndarray):
        """Parts meet the total with the same key (-1: none)."""
        total_of = np.full(key.max() + 2 if len(key) else 1, -1)
        total_of[key[is_total]] = cell[is_total]
        part = is_part & (key >= 0)
        total = total_of[key[part]]
        found = total >= 0
        part_cells, total = cell[part][found], total[found]
        relation = total.astype(np.int64) * _SLOTS + slot[part][found]
        relation_totals, first = np.unique(relation, return_index=True)
        parts.append(pd.DataFrame({
            "relation": np.concatenate([relation, relation_totals]),
            "relation_kind": kind,
            "cell": np.concatenate([part_cells, total[first]]),
            "is_total": np.concatenate([np.zeros(len(part_cells), bool), np.ones(len(first), bool)]),
        }))

    is_all = c.subgroup_category.to_numpy() == "all"
    context = [code["kind"], code["school_year"], code["respondent_type"], code["reporting_level"],
               entity, code["topic_id"], code["item_id"]]
    # subgroup: the `all` row is the total of every category of the same entity
    categories = pd.factorize(c.subgroup_category.where(~is_all))[0] + 1
    if categories.max(initial=0) > _SLOTS - 3:
        raise ValueError(f"more than {_SLOTS - 3} subgroup categories")
    add("subgroup", categories, _group(context), is_all, ~is_all)
    # level: a district is the total of its schools (a school row's district_id)
    level = c.reporting_level.to_numpy()
    is_district = level == "district"
    joined = np.where(is_district, entity, district)
    key = _group([code["kind"], code["school_year"], code["respondent_type"], code["topic_id"],
                  code["item_id"], code["subgroup_category"], code["subgroup_value"], joined])
    add("level", np.full(len(c), _SLOTS - 2), np.where(joined >= 0, key, -1), is_district,
        level == "school")
    # item: a topic's answers are the total of its items'
    kinds = c.kind.to_numpy()
    key = _group([code["school_year"], code["respondent_type"], code["reporting_level"], entity,
                  code["topic_id"], code["subgroup_category"], code["subgroup_value"]])
    add("item", np.full(len(c), _SLOTS - 1), key, kinds == "topic", kinds == "item")
    return pd.concat(parts, ignore_index=True)


def _rank(cells: pd.DataFrame) -> np.ndarray:
    """Cell positions smallest first (RANK_ORDER; strings by code point, nulls last, as
    the SQL's order by)."""
    keys = []
    for column in RANK_ORDER:
        values = cells[column]
        if column == "n":
            keys.append(values.to_numpy())
            continue
        codes, uniques = pd.factorize(values, sort=True)
        keys.append(np.where(codes < 0, len(uniques), codes))
    return np.lexsort(keys[::-1])


def suppress_cells(cells: pd.DataFrame, min_n: int, max_passes: int = 100) -> pd.DataFrame:
    """`cells` with is_suppressed, suppression_reason and suppressed_in_pass, by the rule:
    primary below min_n; then, pass after pass, every relation with exactly one suppressed
    member, or with a published total whose suppressed parts total fewer than min_n
    respondents (an item relation: whose largest suppressed part has fewer), gets its
    smallest published part suppressed (fewest respondents, then the key), or its total
    when every part is suppressed; a cell chosen by several relation kinds in one pass
    takes the first of subgroup, level, item."""
    cells = cells.reset_index(drop=True).copy()
    members = relations(cells)
    ranked = _rank(cells)  # smallest first
    order = np.empty(len(cells), dtype=np.int64)
    order[ranked] = np.arange(len(cells))
    none = np.iinfo(np.int64).max

    members = members.sort_values("relation", kind="stable")
    relation = members.relation.to_numpy()
    starts = np.flatnonzero(np.r_[True, relation[1:] != relation[:-1]]) if len(relation) else relation
    cell = members.cell.to_numpy()
    is_total = members.is_total.to_numpy()
    kind_code = members.relation_kind.map(KIND_CODE).to_numpy()[starts]
    n = cells.n.to_numpy().astype(np.int64)
    member_n = n[cell]
    member_order = order[cell]
    suppressed = n < min_n
    reason = np.where(suppressed, 0, -1)
    in_pass = np.where(suppressed, 0, -1)
    for pass_number in range(1, max_passes + 1):
        if not len(starts):
            break
        s = suppressed[cell]
        part_s = s & ~is_total
        count = np.add.reduceat(s.astype(np.int64), starts)
        total_s = np.add.reduceat((s & is_total).astype(np.int64), starts) > 0
        part_sum = np.add.reduceat(np.where(part_s, member_n, 0), starts)
        part_max = np.maximum.reduceat(np.where(part_s, member_n, 0), starts)
        smallest = np.minimum.reduceat(np.where(~s & ~is_total, member_order, none), starts)
        total_cell = np.maximum.reduceat(np.where(~s & is_total, cell, -1), starts)
        group = np.where(kind_code == KIND_CODE["item"], part_max, part_sum)
        violated = (count == 1) | (~total_s & (count >= 2) & (group < min_n))
        if not violated.any():
            break
        smallest, total_cell = smallest[violated], total_cell[violated]
        chosen = np.where(smallest != none, ranked[np.minimum(smallest, len(cells) - 1)], total_cell)
        picks = pd.Series(kind_code[violated]).groupby(chosen).min()
        suppressed[picks.index.to_numpy()] = True
        reason[picks.index.to_numpy()] = picks.to_numpy()
        in_pass[picks.index.to_numpy()] = pass_number
    else:
        raise RuntimeError(f"complementary suppression: no fixpoint after {max_passes} passes")
    cells["is_suppressed"] = suppressed
    cells["suppression_reason"] = pd.Series(reason).map(REASONS).to_numpy()
    cells["suppressed_in_pass"] = np.where(in_pass >= 0, in_pass, np.nan)
    return cells
