"""Shared kernel: settings, database, money and time helpers, errors, accounts, audit.

Imports no domain package (campaigns, loyalty, attribution) and nothing from web.
"""
