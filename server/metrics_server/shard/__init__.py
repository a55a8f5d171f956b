"""Scrape shards: worker processes that each scrape a stable share of the nodes (`worker`), the
serving process's side that owns them and merges their results (`pool`), the message stream
between the two (`protocol`) and how nodes are shared out (`ring`)."""
