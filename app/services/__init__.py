"""Business rules. No HTTP here: handlers call these with typed keyword arguments."""
