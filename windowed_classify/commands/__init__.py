"""Commands beside ``run``: ``check``, ``sample`` and ``demo``."""
