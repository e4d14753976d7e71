"""The enforcing interposer (a C library loaded with LD_PRELOAD) and the Python view of its ledgers."""
