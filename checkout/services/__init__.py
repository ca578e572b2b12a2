"""Writes of the checkout app, by what they write: ``orders``, ``payments`` (the one status writer), ``events``."""
