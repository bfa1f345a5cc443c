"""README's quoted result cells are the committed tables' numbers, not retyped ones.

README marks each table it quotes from a committed CSV with `<!-- quoted from PATH -->` above it. Its
header names the row's domain (`dataset/domain`) in the first column and `METHOD METRIC` in the others
(METHOD: the method's name as in the CSV's `method` column, any case); each cell is `mean` or
`mean ± se`, rounded to the decimals it shows. Every such cell must equal the CSV's value for that
(dataset, domain, method, metric) at those decimals, in-domain (train domain = test domain).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- quoted from (\S+) -->\n((?:\|.*\|\n)+)")


def row_cells(line: str) -> list[str]:
    """The stripped cells of one Markdown table row."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def quoted_tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """(CSV path, rows of cells without the separator row) of every marked table in `text`."""
    found = []
    for match in MARKER.finditer(text):
        rows = [row_cells(line) for line in match.group(2).splitlines()]
        found.append((match.group(1), [rows[0], *rows[2:]]))
    return found


def cell_values(cell: str) -> list[tuple[float, int]]:
    """The numbers of a `mean` or `mean ± se` cell with their decimals."""
    parts = [part.strip() for part in cell.split("±")]
    return [(float(part), len(part.partition(".")[2])) for part in parts]


def mismatches(csv_path: Path, rows: list[list[str]]) -> tuple[int, list[str]]:
    """(cells checked, cells that differ from the CSV) of one quoted table."""
    frame = pd.read_csv(csv_path, comment="#")
    frame = frame[frame["train_domain"] == frame["test_domain"]]
    header, checked, wrong = rows[0], 0, []
    for row in rows[1:]:
        dataset, domain = row[0].split("/")
        for column, cell in zip(header[1:], row[1:], strict=True):
            method, metric = column.split(" ", 1)
            hit = frame[(frame["dataset"] == dataset) & (frame["train_domain"] == domain)
                        & (frame["method"] == method.lower()) & (frame["metric"] == metric)]
            assert len(hit) == 1, f"{csv_path.name} has no single row for {row[0]} {column}"
            recorded = [hit["mean"].iloc[0], hit["se"].iloc[0]]
            for (quoted, decimals), value in zip(cell_values(cell), recorded, strict=False):
                checked += 1
                if pd.isna(value) or f"{value:.{decimals}f}" != f"{quoted:.{decimals}f}":
                    wrong.append(f"{row[0]} {column}: README {cell}, {csv_path.name} {value}")
    return checked, wrong


def test_readme_quotes_committed_table_cells_exactly():
    tables = quoted_tables((ROOT / "README.md").read_text(encoding="utf-8"))
    assert tables, "README quotes no committed table (no '<!-- quoted from ... -->' marker)"
    total = 0
    for path, rows in tables:
        checked, wrong = mismatches(ROOT / path, rows)
        assert not wrong, "\n".join(wrong)
        total += checked
    assert total >= 16


def test_a_retyped_cell_is_caught(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("# a table\ndataset,train_domain,test_domain,method,name,metric,mean,se,n\n"
                   "shapes,studio,studio,erm,ERM,cAcc,91.2500,0.4120,3\n"
                   "shapes,studio,street,erm,ERM,cAcc,50.0000,1.0000,3\n")
    text = "<!-- quoted from t.csv -->\n| domain | ERM cAcc |\n|---|---|\n| shapes/studio | {} |\n"
    for cell, expected_wrong in [("91.2 ± 0.4", 0), ("91.25", 0), ("91.3 ± 0.4", 1), ("91.2 ± 0.5", 1)]:
        [(path, rows)] = quoted_tables(text.format(cell))
        checked, wrong = mismatches(tmp_path / path, rows)
        assert (checked, len(wrong)) == (len(cell_values(cell)), expected_wrong), cell


@pytest.mark.parametrize("cell, values", [("91.25", [(91.25, 2)]), ("3.1 ± 0.4", [(3.1, 1), (0.4, 1)])])
def test_cells_parse_with_their_decimals(cell, values):
    assert cell_values(cell) == values


#: README's quote of Table VI's verdict lines: the marker, then one `- ` line per verdict
VERDICTS = re.compile(r"<!-- verdicts quoted from (\S+) -->\n((?:- .*\n)+)")


def verdict_mismatches(readme: str, root: Path) -> list[str]:
    """The quoted verdict lines that are not, in order, the verdict notes of the table they are quoted from."""
    wrong = []
    for match in VERDICTS.finditer(readme):
        notes = [line.removeprefix("- note: verdicts: ") for line in (root / match.group(1)).read_text().splitlines()
                 if line.startswith("- note: verdicts: ")]
        quoted = [line.removeprefix("- ") for line in match.group(2).splitlines()]
        if quoted != notes:
            wrong.append(f"{match.group(1)}: README quotes {len(quoted)} lines, the table has {len(notes)}; first "
                         f"differing: {next((q for q, n in zip(quoted, notes, strict=False) if q != n), '(count)')}")
    return wrong


def test_readme_quotes_table6s_verdict_lines_once_it_is_committed():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table6 = ROOT / "results" / "quick" / "tables" / "table6.md"
    quotes = [match.group(1) for match in VERDICTS.finditer(readme)]
    assert quotes == (["results/quick/tables/table6.md"] if table6.is_file() else []), quotes
    assert not verdict_mismatches(readme, ROOT)


def test_a_retyped_verdict_line_is_caught(tmp_path):
    (tmp_path / "t6.md").write_text("# Table VI\n- note: verdicts: claim 1a, shapes: quick SUPPORTED: **stable**\n"
                                    "- note: verdicts: claim 1a, digits: quick CONTRADICTED: **stable**\n")
    quote = "<!-- verdicts quoted from t6.md -->\n- claim 1a, shapes: quick SUPPORTED: **stable**\n{}"
    assert not verdict_mismatches(quote.format("- claim 1a, digits: quick CONTRADICTED: **stable**\n"), tmp_path)
    assert verdict_mismatches(quote.format("- claim 1a, digits: quick SUPPORTED: **stable**\n"), tmp_path)
    assert verdict_mismatches(quote.format(""), tmp_path)


#: README's quote of claims.md's summary: the marker, then a `| # | claim | ours |` table
CLAIMS = re.compile(r"<!-- claims quoted from (\S+) -->\n((?:\|.*\|\n)+)")


def summary_rows(claims_md: str) -> list[list[str]]:
    """(#, claim, ours) of every row of claims.md's summary table, the first table after its `Summary:` line."""
    lines = claims_md.partition("\nSummary:")[2].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        table.append(row_cells(line)[:3])
    return table


def claims_mismatches(readme: str, root: Path) -> list[str]:
    """The claims quotes whose rows are not, in order, the (#, claim, ours) rows of the file they are quoted from."""
    wrong = []
    for match in CLAIMS.finditer(readme):
        quoted = [row_cells(line) for line in match.group(2).splitlines()[2:]]
        recorded = summary_rows((root / match.group(1)).read_text(encoding="utf-8"))
        if quoted != recorded:
            wrong.append(f"{match.group(1)}: README quotes {quoted}, the file says {recorded}")
    return wrong


def test_readme_quotes_every_claims_verdict_as_claims_md_states_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [match.group(1) for match in CLAIMS.finditer(readme)] == ["results/quick/claims.md"]
    assert not claims_mismatches(readme, ROOT)


def test_a_retyped_claims_verdict_is_caught(tmp_path):
    (tmp_path / "c.md").write_text("# Claims\n\nSummary: 1 SUPPORTED\n\n| # | claim | ours | published |\n"
                                   "|---|---|---|---|\n| 1a | EGAT is robust | SUPPORTED (1 of 1) | PASS |\n\n## 1a\n")
    quote = "<!-- claims quoted from c.md -->\n| # | claim | ours |\n|---|---|---|\n| 1a | EGAT is robust | {} |\n"
    assert not claims_mismatches(quote.format("SUPPORTED (1 of 1)"), tmp_path)
    assert claims_mismatches(quote.format("CONTRADICTED (1 of 1)"), tmp_path)
    assert claims_mismatches("<!-- claims quoted from c.md -->\n| # | claim | ours |\n|---|---|---|\n", tmp_path)
