"""CSV files that a spreadsheet opens as data, never as formulas.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (``=HYPERLINK(...)`` leaks data, DDE runs programs), and skip a
leading tab or carriage return before looking. Every CSV the dashboard writes goes
through :func:`writer`, which prefixes such a text cell with an apostrophe: spreadsheets
show the text as typed, and a reader of the raw file sees one extra character.

Only text is touched. Numbers, dates and ``None`` are our own values, never a formula,
and stay numbers (a negative amount is written ``-35``, not ``'-35``).
"""

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """``value`` as it may go into a cell: text starting like a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, file, **options):
        self._writer = csv.writer(file, **options)

    def writerow(self, row):
        return self._writer.writerow([neutralise(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


class _Echo:
    """A file-like object whose write returns the line, for streaming a response."""

    def write(self, value):
        return value


def writer(file=None, **options):
    """A ``csv.writer`` that neutralises every cell; without ``file``, ``writerow``
    returns the line, to be yielded to a ``StreamingHttpResponse``."""
    return _SafeWriter(_Echo() if file is None else file, **options)
