"""The command line: typer apps, one module per command group; the only code that prints."""
