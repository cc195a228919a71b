"""Horizontal federated learning: parties share features, hold different customers."""
