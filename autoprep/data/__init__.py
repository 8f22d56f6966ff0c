"""Stage 1: find the images of a class-per-folder directory, decode them once, split them."""
