"""Signals other apps listen to, so that generations imports none of them."""

from django.dispatch import Signal

# A person resolved a generation that needed attention: sent with ``request``, ``action``
# (what they chose), ``generation`` and ``details``. The reviews app audits it.
generation_resolved = Signal()
