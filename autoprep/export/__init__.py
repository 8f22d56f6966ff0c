"""Stage 5: the generated standalone module that carries the winning pipeline."""
