"""Stage 3: the search space, the Keras Tuner hypermodel and tuners, and the search loop `tune`."""
