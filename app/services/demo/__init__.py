"""Demo mode: the synthetic clinic and persona sign-in."""
