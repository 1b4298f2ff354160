"""Repositories: typed reads and writes of one area each, over a shared ``Database``."""
