"""Catalog use cases, one module per aggregate: ``categories`` (admins write them), ``products``
(owners write them; browsing and search), ``reviews`` and ``favorites``; ``deps`` holds what they share.

Writes run in one unit of work each and change counters on products (ratings, favorites) by
arithmetic in the same transaction, so they never drift from the rows they count. Reads go
through ``CatalogQueries`` and come back as views.
"""
