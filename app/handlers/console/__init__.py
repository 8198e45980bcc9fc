"""The clinic console under /staff, one sub-area per module: signing in, patients, join
requests, results, posters, the audit log, and what was not delivered. Staff sessions use
their own cookie, read only on the console's paths (app/handlers/support.py)."""
