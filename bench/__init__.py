"""`make bench`: the app under gunicorn (or granian) on throwaway PostgreSQL databases at 10k
and 100k issues, measured over HTTP against issue 15's goals.

bench/run.py drives it (databases, seed, server, phases, targets, report), bench/seed.py fills
a database, bench/reopen.py puts claimed issues back, bench/plans.py explains the hot queries,
bench/load.py is the load generator. Not a test: it asserts only that every checkout race has
exactly one winner; everything else it measures and reports as met or missed.
"""
