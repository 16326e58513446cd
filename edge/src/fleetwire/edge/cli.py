"""The ``fleetwire-edge`` command line."""

import typer

app = typer.Typer(no_args_is_help=True, help="Fleetwire edge agent.")


@app.command()
def version() -> None:
    """Print the agent version."""
    typer.echo("0.1.0")


def main() -> None:
    """Run the CLI."""
    app()
