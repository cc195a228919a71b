"""covault federated package."""
