"""``fleetwire protocol ...``: the published contract."""

from pathlib import Path
from typing import Annotated

import typer

from fleetwire.protocol.export import SCHEMA_DIR, export_files

app = typer.Typer(no_args_is_help=True, help="The published protocol contract.")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _unexpected(out: Path, files: dict[str, str]) -> list[str]:
    """Schema files under ``out`` that the export no longer produces."""
    found = (out / SCHEMA_DIR).glob("*.json")
    return sorted(rel for p in found if (rel := p.relative_to(out).as_posix()) not in files)


@app.command()
def export(
    out: Annotated[
        Path, typer.Option(help="Directory to write into (the repository's docs/).")
    ] = Path("docs"),
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any file is missing or stale."),
    ] = False,
) -> None:
    """Write JSON Schema and the AsyncAPI document under docs/."""
    files = export_files()
    stale = [rel for rel, text in files.items() if _read(out / rel) != text]
    unexpected = _unexpected(out, files)
    if check:
        for rel in stale:
            typer.echo(f"stale: {out / rel}", err=True)
        for rel in unexpected:
            typer.echo(f"not generated (delete it?): {out / rel}", err=True)
        if stale or unexpected:
            typer.echo("run `uv run fleetwire protocol export` and commit the result", err=True)
            raise typer.Exit(code=1)
        typer.echo(f"{len(files)} files in {out} are up to date")
        return
    for rel in stale:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8", newline="\n")
        typer.echo(f"wrote {path}")
    for rel in unexpected:
        typer.echo(f"warning: {out / rel} is not generated any more", err=True)
    typer.echo(f"{len(files)} files in {out}, {len(stale)} updated")
