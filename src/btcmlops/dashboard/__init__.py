"""The web dashboard served under ``/dashboard``: see ``routes``."""
