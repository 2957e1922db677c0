"""Reading an executed notebook's outputs, for the tests that check what a student sees."""

from __future__ import annotations


def output_texts(output) -> list[str]:
    """Every piece of text an output shows: stream text, an error's name and value, every ``text/*`` form."""
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    if output.get("output_type") == "error":
        return [f"{output.get('ename')}: {output.get('evalue')}"]
    data = output.get("data", {})
    return [v if isinstance(v, str) else "".join(v) for m, v in data.items() if m.startswith("text/") and v]


def exercise_start(nb) -> int:
    """The index of the notebook's last "## Exercises" heading (its length where there is none)."""
    heads = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises")]
    return heads[-1] if heads else len(nb.cells)
