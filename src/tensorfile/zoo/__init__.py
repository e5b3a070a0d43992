"""Many files at once: scan, inspect or identify a zoo (local folders, object storage, hub repos)
into one JSON line per file, on this process or a local pool of our workers (Ray: next).

`items` turns inputs into work items (path, size, ETag), `work` runs one verb on one item and
records the requests and bytes it cost (`meter`: a local file's own read syscalls), `results`
appends lines atomically and knows what a previous run finished (--resume), `run` drives it all
(`ray_runner` on Ray) and `report` renders the summary.
"""
