"""covault masking package."""
