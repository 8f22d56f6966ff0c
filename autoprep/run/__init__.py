"""Stage 4: a run directory and the results written into it (`results.json`, `trials.csv`)."""
