"""Files tlreg ships: the built-in model catalog and the demo datasets."""
