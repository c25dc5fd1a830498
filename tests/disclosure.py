"""Disclosure by subtraction in published results (issue 11), shared by the tests.

- relations(): the linear relations between result cells an attacker subtracts along
  (subgroup: a category's values add up to the `all` cell; level: schools add up to
  their district; item: a topic's answers are the sums of its items');
- attack(): recovers suppressed cells through them, over and over, and finds published
  totals whose suppressed parts make a group of fewer than min_reporting_n;
- reference_suppression(): complementary suppression as the project defines it
  (int_result_cells_suppressed), written again in pandas from its description, so the
  SQL can be checked against an independent implementation.

Cells are rows with CELL_KEY (kind `topic` or `item`, item_id '' on topic cells),
district_id and n (true respondents).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_N = 10
CELL_KEY = ["kind", "school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
            "item_id", "subgroup_category", "subgroup_value"]


@dataclass
class Attack:
    cells: pd.DataFrame  # CELL_KEY, district_id, n, suppressed, known, recovered_by, recovered_round
    small_sets: pd.DataFrame  # relations whose suppressed members total fewer than min_n
    trend_leaks: list[str] = field(default_factory=list)

    def recovered(self, kind: str | None = None) -> pd.DataFrame:
        c = self.cells[self.cells.suppressed & self.cells.known]
        return c if kind is None else c[c.kind == kind]

    def summary(self) -> str:
        lines = []
        for kind in ("topic", "item"):
            c = self.cells[self.cells.kind == kind]
            rec = self.recovered(kind)
            by = rec.recovered_by.value_counts().to_dict()
            small = self.small_sets[self.small_sets.kind == kind] if len(self.small_sets) else []
            lines.append(f"{kind}: {len(c)} cells, {int(c.suppressed.sum())} suppressed, "
                         f"{len(rec)} recovered {by}, {len(small)} relations disclose a group "
                         f"of fewer than {MIN_N}")
        lines.append(f"topic_trends: {len(self.trend_leaks)} leaks")
        return "\n".join(lines)


def relations(cells: pd.DataFrame) -> pd.DataFrame:
    """Every linear relation between cells, as memberships: relation, relation kind, cell
    (row position in `cells`), whether the cell is the relation's total."""
    c = cells.reset_index(drop=True).assign(cell=lambda f: np.arange(len(f)))
    parts = []

    def add(kind: str, totals: pd.DataFrame, children: pd.DataFrame, on: list[str]):
        children = children[on + ["cell"]]
        if children.empty:
            return
        totals = totals[on + ["cell"]].merge(children[on].drop_duplicates(), on=on)
        missing = children[on].drop_duplicates().merge(totals[on], on=on, how="left", indicator=True)
        assert (missing._merge == "both").all(), f"{kind} relation without its total:\n{missing.head()}"
        members = pd.concat([totals.assign(is_total=True), children.assign(is_total=False)])
        members["relation"] = kind + ":" + members[on].astype(str).agg("|".join, axis=1)
        parts.append(members[["relation", "cell", "is_total"]].assign(relation_kind=kind))

    ctx = ["kind", "school_year", "respondent_type", "reporting_level", "entity_id", "topic_id", "item_id"]
    values = c[c.subgroup_category != "all"]
    totals = c[c.subgroup_category == "all"]
    # subgroup: the `all` row is the total of every category of the same entity
    per_category = values[ctx + ["subgroup_category"]].drop_duplicates()
    add("subgroup", totals.drop(columns="subgroup_category").merge(per_category, on=ctx), values,
        ctx + ["subgroup_category"])
    # level: a district is the total of its schools
    on = ["kind", "school_year", "respondent_type", "district_id", "topic_id", "item_id",
          "subgroup_category", "subgroup_value"]
    add("level", c[c.reporting_level == "district"], c[c.reporting_level == "school"], on)
    # item: a topic's answers are the total of its items'
    on = ["school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
          "subgroup_category", "subgroup_value"]
    add("item", c[c.kind == "topic"], c[c.kind == "item"], on)
    return pd.concat(parts, ignore_index=True)


def attack(cells: pd.DataFrame, min_n: int = MIN_N) -> Attack:
    """Recover by subtraction until nothing more comes out. `cells` has CELL_KEY,
    district_id, n (true respondents) and known (published)."""
    cells = cells.reset_index(drop=True).copy()
    members = relations(cells)
    known = cells.known.to_numpy().copy()
    by = np.full(len(cells), None, dtype=object)
    rounds = np.zeros(len(cells), dtype=int)
    step = 0
    while True:
        step += 1
        unknown = ~known[members.cell.to_numpy()]
        counts = pd.Series(unknown).groupby(members.relation.to_numpy()).transform("sum").to_numpy()
        single = members[unknown & (counts == 1)].drop_duplicates("cell")
        if single.empty:
            break
        known[single.cell.to_numpy()] = True
        by[single.cell.to_numpy()] = single.relation_kind.to_numpy()
        rounds[single.cell.to_numpy()] = step
    cells["known"] = known
    cells["recovered_by"] = by
    cells["recovered_round"] = rounds
    cells["suppressed"] = ~cells.published

    # a published (or recovered) total with >= 2 unknown members: their combined numbers
    # are disclosed; the group behind them must be at least min_n respondents
    m = members.assign(unknown=~known[members.cell.to_numpy()], n=cells.n.to_numpy()[members.cell.to_numpy()],
                       kind=cells.kind.to_numpy()[members.cell.to_numpy()])
    total_known = m[m.is_total & ~m.unknown].relation
    hidden = m[~m.is_total & m.unknown & m.relation.isin(total_known)]
    size = hidden.groupby(["relation", "relation_kind"]).agg(
        members=("cell", "size"), respondents=("n", "sum"), largest=("n", "max"), kind=("kind", "first")
    ).reset_index()
    # an item relation discloses pooled answers of its hidden items: the respondents behind
    # them are at least the largest item's, maybe no more
    size["group"] = np.where(size.relation_kind == "item", size.largest, size.respondents)
    small = size[size.group < min_n]
    return Attack(cells, small)


REASONS = {0: "primary", 1: "complementary_subgroup", 2: "complementary_level", 3: "complementary_item"}
KIND_CODE = {"subgroup": 1, "level": 2, "item": 3}
RANK_ORDER = ["n", "kind", "school_year", "respondent_type", "reporting_level", "entity_id", "topic_id",
              "item_id", "subgroup_category", "subgroup_value"]


def reference_suppression(cells: pd.DataFrame, min_n: int = MIN_N, max_passes: int = 100) -> pd.DataFrame:
    """`cells` with is_suppressed, suppression_reason and suppressed_in_pass, by the rule:
    primary below min_n; then, pass after pass, every relation with exactly one suppressed
    member, or with a published total whose suppressed parts total fewer than min_n
    respondents (an item relation: whose largest suppressed part has fewer), gets its
    smallest published part suppressed (fewest respondents, then the key), or its total
    when every part is suppressed; a cell chosen by several relation kinds in one pass
    takes the first of subgroup, level, item."""
    cells = cells.reset_index(drop=True).copy()
    members = relations(cells)
    ranked = cells.sort_values(RANK_ORDER, kind="mergesort").index.to_numpy()  # smallest first
    order = np.empty(len(cells), dtype=np.int64)
    order[ranked] = np.arange(len(cells))
    none = np.iinfo(np.int64).max
    cell = members.cell.to_numpy()
    n = cells.n.to_numpy()
    is_total = members.is_total.to_numpy()
    relation = pd.factorize(members.relation)[0]
    relation_kind = members.relation_kind.to_numpy()
    suppressed = n < min_n
    reason = np.where(suppressed, 0, -1)
    in_pass = np.where(suppressed, 0, -1)
    for pass_number in range(1, max_passes + 1):
        s = suppressed[cell]
        frame = pd.DataFrame({
            "relation": relation, "kind": relation_kind, "cell": cell, "total": is_total, "s": s,
            "total_s": is_total & s, "part_n": np.where(s & ~is_total, n[cell], 0),
            "published_part": np.where(~s & ~is_total, order[cell], none),
            "published_total": np.where(~s & is_total, cell, -1),
        })
        stats = frame.groupby("relation").agg(
            kind=("kind", "first"), suppressed=("s", "sum"), total_s=("total_s", "any"),
            part_sum=("part_n", "sum"), part_max=("part_n", "max"),
            smallest=("published_part", "min"), total_cell=("published_total", "max"))
        group = np.where(stats.kind == "item", stats.part_max, stats.part_sum)
        violated = stats[(stats.suppressed == 1) | (~stats.total_s & (stats.suppressed >= 2) & (group < min_n))]
        if violated.empty:
            break
        smallest = violated.smallest.to_numpy()
        chosen = np.where(smallest != none, ranked[np.minimum(smallest, len(cells) - 1)], violated.total_cell)
        picks = pd.DataFrame({"cell": chosen, "code": violated.kind.map(KIND_CODE).to_numpy()})
        picks = picks.groupby("cell").code.min()
        suppressed[picks.index.to_numpy()] = True
        reason[picks.index.to_numpy()] = picks.to_numpy()
        in_pass[picks.index.to_numpy()] = pass_number
    else:
        raise AssertionError(f"no fixpoint after {max_passes} passes")
    cells["is_suppressed"] = suppressed
    cells["suppression_reason"] = [REASONS.get(r) for r in reason]
    cells["suppressed_in_pass"] = np.where(in_pass >= 0, in_pass, np.nan)
    return cells


def solve_attack(cells: pd.DataFrame) -> pd.DataFrame:
    """The suppressed cells an attacker could determine by solving all the relations at
    once (linear algebra), not only one subtraction at a time: a suppressed cell is
    determined when no solution of the relations' homogeneous system (published cells at
    zero) moves it, i.e. its coordinate vanishes on the null space. `cells` has a
    `published` column; returns the determined suppressed cells."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    cells = cells.reset_index(drop=True)
    hidden = ~cells.published.to_numpy()
    column = np.full(len(cells), -1)
    column[hidden] = np.arange(hidden.sum())
    members = relations(cells)
    members = members[hidden[members.cell.to_numpy()]]
    row = pd.factorize(members.relation)[0]
    matrix = csr_matrix((np.where(members.is_total, 1.0, -1.0), (row, column[members.cell.to_numpy()])),
                        shape=(row.max() + 1 if len(row) else 0, hidden.sum()))
    _, component = connected_components((matrix.T @ matrix) != 0, directed=False)
    determined = []
    for label in np.unique(component):
        columns = np.where(component == label)[0]
        block = matrix[:, columns]
        block = block[np.unique(block.nonzero()[0])].toarray()
        if block.size == 0:
            continue
        _, singular, vt = np.linalg.svd(block, full_matrices=True)
        null_space = vt[int((singular > 1e-9).sum()):].T
        fixed = np.all(np.abs(null_space) < 1e-9, axis=1) if null_space.size else np.ones(len(columns), bool)
        determined.extend(columns[fixed])
    return cells[hidden].iloc[sorted(determined)]
