"""``fleetwire protocol ...``: the published contract."""

import typer

app = typer.Typer(no_args_is_help=True, help="The published protocol contract.")


@app.command()
def export() -> None:
    """Write JSON Schema and the AsyncAPI document under docs/."""
    raise NotImplementedError
