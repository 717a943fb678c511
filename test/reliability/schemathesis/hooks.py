"""schemathesis hooks of the reliability suite (loaded through SCHEMATHESIS_HOOKS=hooks).

tus upload data is sent as application/offset+octet-stream, a media type schemathesis has no
generator for: its bytes are any bytes, as for application/octet-stream.
"""
from hypothesis import strategies as st

import schemathesis

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))
