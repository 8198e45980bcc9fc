"""HTTP handlers: thin. Parse input, call one service, render or redirect."""
