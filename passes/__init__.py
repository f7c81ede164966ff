"""nn -> nn transformations and analyses, one pass per file."""
