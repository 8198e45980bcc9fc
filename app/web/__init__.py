"""What the handlers share besides app/handlers/support.py, so that no handler module imports
another: where a request comes from, who is signed in (found before the guards run), the
route groups' guards, links and redirects by route name, one-time notices, the passkey and
code steps that more than one area uses, and the console's page frame. No routes here."""
