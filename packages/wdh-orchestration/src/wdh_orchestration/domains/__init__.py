"""The domains served by WorkDataHub, one package each (``domains/<name>/``)."""
