"""Bridges to other NAS tools: ehdnas's spaces and predictors where those tools expect their own.

Each bridge imports its tool only inside the functions that need it, so ehdnas installs and imports without it.
"""
