"""Operator actions on devices: validate / schedule / cancel / replay, signing and audit.

``cli.py`` holds the ``pipeconsole request`` command group; each action lives in its own module
and is shared by the CLI and the TUI.
"""
