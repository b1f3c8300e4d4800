"""`make bench`: the app under gunicorn on a throwaway PostgreSQL database, measured over HTTP.

bench/run.py drives it (database, seed, server, scenarios, report), bench/seed.py fills the
database, bench/load.py is the load generator. Not a test: it asserts nothing, it measures.
"""
