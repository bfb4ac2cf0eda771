"""``kura bench``: Kura's own engines measured against their usual baselines, on the same inputs, in one run.

Each benchmark is a small module (``embed``, ``llm``, ``retrieve``, ``e2e``, ``ingest``); ``timing`` holds
the run plan, statistics and the isolated child processes every engine is measured in, ``report`` turns
the results into tables, JSON and the floors (targets) they meet or miss.
"""

SECTIONS = ("embed", "llm", "retrieve", "e2e", "ingest")
