"""The turn: what every door that runs the agent goes through (see `server.turns.kit`)."""
