"""HTTP handlers: thin. Parse input, call one service, render or redirect. One module per area,
each exposing one Router with the area's path and guards (README: the area map); what they
share is in support.py and app/web/."""
