"""tlreg.advisor: target data in, ranking out."""
