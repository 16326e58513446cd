"""The ``fleetwire`` command line: cloud processes and the operator's tools."""

import typer

from fleetwire.cloud.protocol_cli import app as protocol_app

app = typer.Typer(no_args_is_help=True, help="Fleetwire cloud and operator CLI.")
app.add_typer(protocol_app, name="protocol")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("0.1.0")


def main() -> None:
    """Run the CLI."""
    app()
