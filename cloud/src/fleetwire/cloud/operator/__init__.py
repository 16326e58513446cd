"""The operator's side of the ``fleetwire`` CLI: a client of the HTTP API."""
