"""A faithful, fault-injectable stand-in for the 3D AI Studio HTTP API.

It follows the upstream's API reference with its own reading of the contract and
imports nothing from the dashboard, so a misreading on either side shows up as
a failing test instead of being agreed on by both.
"""
