"""The fuzz campaign of issue 11: one module per family of file formats covault reads."""
