"""Commands beside ``run``: ``check``, ``sample``, ``demo`` and ``example-config``."""
