"""Disclosure by subtraction in published results (issue 11), shared by the tests.

- attack(): recovers suppressed cells through the relations between result cells
  (orchestrate.disclosure.relations: subgroup, level, item), over and over, and finds
  published totals whose suppressed parts make a group of fewer than min_reporting_n;
- solve_attack(): the cells an attacker determines by solving every relation at once;
- reference_suppression(): complementary suppression as the project defines it
  (int_result_cells_suppressed), written again in pandas from its description
  (orchestrate.disclosure.suppress_cells, which the pandas reference of the marts uses
  too), so the SQL can be checked against an independent implementation.

Cells are rows with CELL_KEY (kind `topic` or `item`, item_id '' on topic cells),
district_id and n (true respondents).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from orchestrate.disclosure import CELL_KEY, relations, suppress_cells

MIN_N = 10
__all__ = ["CELL_KEY", "MIN_N", "Attack", "attack", "reference_suppression", "relations", "solve_attack"]


def reference_suppression(cells: pd.DataFrame, min_n: int = MIN_N, max_passes: int = 100) -> pd.DataFrame:
    """orchestrate.disclosure.suppress_cells with the tests' min_reporting_n."""
    return suppress_cells(cells, min_n, max_passes)


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
