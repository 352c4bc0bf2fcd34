"""tlreg.cli: click commands that parse, call the registry and advisor, and print."""
