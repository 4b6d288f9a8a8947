"""Headless runs: the script language (:mod:`.script`) and its conditions (:mod:`.conditions`).

The runner that drives the Textual app lives in :mod:`pipeconsole.ui.headless` (Textual stays
under ``ui/``); everything here is plain Python over the model's Snapshot.
"""
