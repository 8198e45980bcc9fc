"""The clinic console: staff sign-in, roles, patients, posters and the audit search."""
