"""schemathesis hooks of the reliability suite (loaded through SCHEMATHESIS_HOOKS=hooks).

tus upload data is sent as application/offset+octet-stream, a media type schemathesis has no
generator for: its bytes are any bytes, as for application/octet-stream.

Coverage-phase cases labelled positive that carry a header value the document's own pattern
refuses are dropped (see `drop_mislabelled_header_cases`).
"""
import re

from hypothesis import strategies as st

import schemathesis
from schemathesis import GenerationMode

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))


def _header_patterns(operation):
    patterns = {}
    for parameter in operation.headers:
        pattern = parameter.definition.get("schema", {}).get("pattern")
        if isinstance(pattern, str):
            patterns[parameter.name.lower()] = re.compile(pattern)
    return patterns


@schemathesis.hook
def filter_case(context, case):
    """drop_mislabelled_header_cases: schemathesis 4.32's coverage phase builds header values from
    letters and digits only (HEADER_ALLOWED_CHARS in specs/openapi/coverage/_wire.py). For an
    optional header whose pattern needs other characters (If-Match: `*` or quoted entity tags) it
    finds no valid value, seeds the header with one of its negative values (`0`) and then sends that
    in the cases it labels positive, so positive_data_acceptance reports the server's rightful 400.
    Only such cases are dropped: positive, and a header value the declared pattern refuses. The
    negative cases (which must be refused) and every other case still run."""
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE or not case.headers:
        return True
    patterns = _header_patterns(case.operation)
    for name, value in case.headers.items():
        pattern = patterns.get(name.lower())
        if pattern is not None and isinstance(value, str) and not pattern.search(value):
            return False
    return True


@schemathesis.hook
def after_call(context, case, response):
    """opaque_download_bodies: a download's 2xx body is the stored bytes, labelled with the media type
    their uploader gave (PNG bytes stored as text/plain come back so, rightly). schemathesis would
    parse such a body as that type and report ST110; the per-operation setting that turns its body
    check off (schemathesis.toml) does not reach the fuzzing phase. So it sees these bodies as what
    they are to the API, opaque bytes. Every other response, and the download's errors, are untouched."""
    if case.operation.definition.raw.get("operationId") == "download" and 200 <= response.status_code < 300:
        response.headers["content-type"] = ["application/octet-stream"]
