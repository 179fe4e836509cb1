"""One module per `lungus` subcommand; see lungus.cli."""
