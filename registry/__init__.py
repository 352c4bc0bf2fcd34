"""tlreg.registry: what models exist and what we know about them."""
