"""Implementation modules of jaxconv (private)."""
