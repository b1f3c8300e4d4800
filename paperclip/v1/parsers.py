"""`/v1` reads JSON bodies only, including the ones `curl -d '{...}'` labels as a form.

curl's `-d` without `-H "Content-Type: application/json"` sends
`application/x-www-form-urlencoded`, and 003's own examples (assign, cancel, reassign, comments,
bulk) are written that way. `/v1` has no form endpoints, so such a body is read as the JSON it
is, with the JSON parser's rules (NUL, depth); one that is not JSON is a 400 `parse_error`.
"""

from __future__ import annotations

from paperclip.api.parsers import JSONParser


class FormLabelledJSONParser(JSONParser):
    media_type = "application/x-www-form-urlencoded"
