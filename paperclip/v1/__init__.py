"""The task-queue dialect `/v1` (reference 003, DESIGN §8): a second wire over the same services.

What differs from `/api` lives here: the `{data, meta}` envelope and `X-Request-Id`
(`renderers`), the error body and statuses (`errors`), cursor pages (`pagination`), and the
base viewset (`viewsets`). Ids are written in their stored, prefixed form (`iss_01m8...`), which
is 003's: `/v1` rewrites none.
"""
