"""File connectors — a placeholder for Epic 3.

What goes here: discovering the input files of a domain (the monthly folders and
file-name patterns of the legacy exports, configured per domain), choosing the newest
version of a file, and handing each file to a reader in :mod:`wdh_io.readers`. It has
no behaviour yet: the sample job (Epic 1) is given its input path explicitly.
"""

__all__: list[str] = []
