"""schemathesis hooks of the reliability suite (loaded through SCHEMATHESIS_HOOKS=hooks).

The OpenAPI document says what each request may carry; schemathesis then expects every request it
generates from it (a "positive" case) to be accepted, and warns when an operation mostly refuses
them. Some refusals are right whatever a schema says, because the request refers to something a
schema cannot see: stored state (an If-Match names a version, a completion's sha256 names bytes sent
earlier), its own body (X-Content-SHA256, Upload-Checksum), or another header (tus's "exactly one of
Upload-Length and Upload-Defer-Length"). These hooks make such generated requests meaningful, each
for one named reason, and only for positive cases: negative cases, which must be refused, are sent
as generated. Nothing here changes what a request is checked against.

- generators: tus upload data (`application/offset+octet-stream`, any bytes) and `Upload-Metadata`
  values (format `tus-upload-metadata`: unique keys, values of UTF-8 text).
- `filter_case`: drops positive cases that no server state can make acceptable (see its docstring).
- `before_call`: arranges the state a positive case's preconditions and digests refer to.
- `after_call`: a download's stored bytes are opaque (see `opaque_download_bodies`).
"""
import base64
import hashlib
import re
import uuid
from urllib.parse import quote, unquote

import requests
from hypothesis import strategies as st

import schemathesis
from schemathesis import GenerationMode

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))

# Keys that place the file (`path`, `dir`, `filename`, `name`) or type it (`filetype`, `type`): their
# values must be a valid path, name or media type, which random text is not; every other key is metadata.
PLACEMENT_KEYS = {"path", "dir", "filename", "name", "filetype", "type"}
_metadata_key = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1, max_size=16
).filter(lambda key: key not in PLACEMENT_KEYS)


def _metadata_pair(key, value):
    return key if value is None else f"{key} {base64.b64encode(value.encode()).decode()}"


# What a tus client sends as Upload-Metadata: the grammar the document's pattern states, with the two
# rules a pattern cannot state (unique keys, values that are UTF-8 text).
schemathesis.openapi.format(
    "tus-upload-metadata",
    st.dictionaries(_metadata_key, st.none() | st.text(max_size=32), max_size=4).map(
        lambda pairs: ",".join(_metadata_pair(k, v) for k, v in pairs.items())
    ),
)

TIMEOUT = 10


def _positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def _operation_id(case):
    return case.operation.definition.raw.get("operationId")


def _header(case, name):
    for key, value in (case.headers or {}).items():
        if key.lower() == name:
            return key, value
    return None, None


def _header_patterns(operation):
    patterns = {}
    for parameter in operation.headers:
        pattern = parameter.definition.get("schema", {}).get("pattern")
        if isinstance(pattern, str):
            patterns[parameter.name.lower()] = re.compile(pattern)
    return patterns


def _mislabelled_header(case):
    """schemathesis 4.32's coverage phase builds header values from letters and digits only
    (HEADER_ALLOWED_CHARS in specs/openapi/coverage/_wire.py). For an optional header whose pattern
    needs other characters (If-Match: `*` or quoted entity tags) it finds no valid value, seeds the
    header with one of its negative values (`0`) and sends that in cases it labels positive. Such a
    case is not positive: a header value the declared pattern refuses."""
    patterns = _header_patterns(case.operation)
    for name, value in (case.headers or {}).items():
        pattern = patterns.get(name.lower())
        if pattern is not None and isinstance(value, str) and not pattern.search(value):
            return True
    return False


def _body_length(case):
    return len(case.body) if isinstance(case.body, (bytes, bytearray)) else 0


@schemathesis.hook
def filter_case(context, case):
    """Drops positive cases that no state of the server can make acceptable, for rules a schema of
    independent parameters cannot state; they are refused rightly, and negative cases still run:
    - a header value the declared pattern refuses, mislabelled positive (`_mislabelled_header`);
    - a tus creation without exactly one of Upload-Length and Upload-Defer-Length: 1 (tus 1.0);
    - a write with both If-Match and If-None-Match: * (RFC 9110 13.2.2: one of them fails, 412);
    - a form with If-None-Match: * and several file parts: schemathesis names each part after its
      field (`file`, with an extension sniffed from its bytes), and the second part of a name is
      refused (412) because the first just created it;
    - tus data past the end: a creation or a PATCH whose Upload-Length is below Upload-Offset (0 for
      a creation) plus its body (413);
    - a move of a path into itself (`to` below `path`: 400);
    - an upload with X-Content-SHA256 of a body the client sends as multipart/form-data (as `*/*`
      allows): the client picks the multipart boundary as it sends, so the digest of those bytes
      cannot be known before (`_matching_digests` sets it for every other body)."""
    if not _positive(case):
        return True
    if _mislabelled_header(case):
        return False
    operation = _operation_id(case)
    if operation == "tusCreate" and (_header(case, "upload-length")[1] is None) == (_header(case, "upload-defer-length")[1] is None):
        return False
    if operation in ("upload", "createUpload") and _header(case, "if-match")[1] and _header(case, "if-none-match")[1]:
        return False
    if operation == "uploadForm" and _header(case, "if-none-match")[1]:
        files = case.body.get("file") if isinstance(case.body, dict) else None
        return not isinstance(files, list) or len(files) <= 1
    if operation == "move" and isinstance(case.body, dict) and isinstance(case.body.get("to"), str):
        source = unquote(case.path_parameters.get("path", ""))
        return not case.body["to"].startswith(source.rstrip("/") + "/")
    if operation == "upload" and _header(case, "x-content-sha256")[1] and (case.media_type or "").startswith("multipart/"):
        return False
    if operation in ("tusCreate", "tusPatch"):
        length, offset = _header(case, "upload-length")[1], _header(case, "upload-offset")[1]
        if length is not None:
            return int(length) >= int(offset or 0) + _body_length(case)
    return True


class Api:
    """The service under test, reached the way the case is: its base URL, its API's prefix and the
    case's store. Paths are percent-encoded, as a case's path parameters are."""

    def __init__(self, case):
        prefix = case.operation.path.split("/{store}")[0]
        self.root = f"{case.operation.schema.get_base_url().rstrip('/')}{prefix}/{case.path_parameters['store']}"

    def url(self, verb, path=""):
        return f"{self.root}/{verb}/{path}"

    def put_file(self, path, body=b"precondition"):
        """Makes `path` a file (whatever was there goes); its ETag, or None when it cannot be one."""
        requests.delete(self.url("delete", path), params={"recursive": "true"}, timeout=TIMEOUT)
        response = requests.put(self.url("upload", path), data=body, timeout=TIMEOUT)
        return response.headers.get("etag") if response.ok else None

    def remove(self, path):
        requests.delete(self.url("delete", path), params={"recursive": "true"}, timeout=TIMEOUT)

    def names_in(self, folder):
        response = requests.get(self.url("list", folder), timeout=TIMEOUT)
        return [entry["name"] for entry in response.json()["entries"]] if response.ok else []

    def new_upload(self):
        """A new part upload, of a file of its own (a name no generated case uses): its id, or None."""
        created = requests.post(self.url("createupload", f"hooks-{uuid.uuid4().hex}"), json={}, timeout=TIMEOUT)
        return created.json()["uploadId"] if created.ok else None

    def upload_with_part(self, body):
        """A part upload holding one part, `body`: its id, or None."""
        upload_id = self.new_upload()
        if upload_id is not None:
            requests.put(self.url("uploadpart", upload_id), params={"part": "1"}, data=body, timeout=TIMEOUT)
        return upload_id

    def tus_upload(self, headers):
        """A new tus upload created with `headers` (a file of a random name): its id (the last segment
        of its Location), or None."""
        created = requests.post(self.url("tus"), headers={"Tus-Resumable": "1.0.0", **headers}, timeout=TIMEOUT)
        return created.headers["location"].rstrip("/").split("/")[-1].split("?")[0] if created.ok else None


def _sent_body(case):
    """The bytes the case's request carries, as the transport will send them."""
    kwargs = case.as_transport_kwargs(base_url=case.operation.schema.get_base_url())
    body = requests.Request(method=kwargs["method"], url=kwargs["url"], headers=kwargs.get("headers"), data=kwargs.get("data"), json=kwargs.get("json"), files=kwargs.get("files")).prepare().body
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body


def _matching_digests(case, operation):
    """X-Content-SHA256 and tus's Upload-Checksum state the digest of the request's own body, which
    no schema can tie to the body: each is set to the digest of the body sent, in the generated
    header's algorithm, so the case checks that a right digest is accepted."""
    if operation in ("upload", "uploadPart"):
        name, value = _header(case, "x-content-sha256")
        if value is not None:
            case.headers[name] = hashlib.sha256(_sent_body(case)).hexdigest()
    elif operation in ("tusCreate", "tusPatch"):
        name, value = _header(case, "upload-checksum")
        if value is not None:
            algorithm = value.split(" ")[0]
            digest = hashlib.new(algorithm, _sent_body(case)).digest()
            case.headers[name] = f"{algorithm} {base64.b64encode(digest).decode()}"


def _folder(encoded):
    """A folder path parameter (percent-encoded) without its trailing slash."""
    return re.sub(r"(/|%2F)+$", "", encoded, flags=re.IGNORECASE)


def _met_preconditions(case, operation, api):
    """If-Match names a version of the file at the path, If-None-Match: * wants no file there, a move
    needs something to move: state a schema cannot describe. Before a positive case, the path holds a
    file (If-Match: `*`, or a move's source), whose ETag
    is added to the generated list (If-Match: entity tags), or nothing (If-None-Match: *). The path
    is the case's own, a tus creation's from its Upload-Metadata, or a form's file part's in its folder."""
    path = case.path_parameters.get("path")
    name, if_match = _header(case, "if-match")
    if operation == "move" and if_match is None:
        # A move moves something: a random source path names nothing (404) nearly every time.
        api.put_file(path)
    if if_match is not None and operation in ("upload", "createUpload", "move", "delete"):
        etag = api.put_file(path)
        if etag is not None and if_match.strip() != "*":
            case.headers[name] = f"{if_match}, {etag}"
    if _header(case, "if-none-match")[1] is None:
        return
    if operation in ("upload", "createUpload"):
        api.remove(path)
    elif operation == "tusCreate":
        target = _tus_target(_header(case, "upload-metadata")[1] or "")
        if target is not None:
            api.remove(quote(target, safe=""))
    elif operation == "uploadForm":
        # The form's one file part is stored as `file` or `file.<extension>` in the folder.
        folder = _folder(path)
        for name in api.names_in(folder):
            if name == "file" or name.startswith("file."):
                api.remove(f"{folder}%2F{quote(name, safe='')}" if folder else quote(name, safe=""))


def _listed_folder(case, operation, api):
    """A listing's cursor is opaque: only a page's nextCursor is one (the document says so), and a
    generated folder mostly does not exist (404). A positive listing lists a folder that exists and
    holds two files, and a generated cursor is replaced by the one its first page of one entry ends
    with, so that the listing is tested going on from a page."""
    if operation not in ("list", "listRoot"):
        return
    folder = _folder(case.path_parameters.get("dir") or "")
    for name in ("listed-1", "listed-2"):
        requests.put(api.url("upload", f"{folder}%2F{name}" if folder else name), data=b"listed", timeout=TIMEOUT)
    if (case.query or {}).get("cursor") is not None:
        params = {"limit": "1", **({"recursive": case.query["recursive"]} if "recursive" in case.query else {})}
        page = requests.get(api.url("list", folder), params=params, timeout=TIMEOUT)
        if page.ok and page.json()["nextCursor"] is not None:
            case.query["cursor"] = page.json()["nextCursor"]


def _tus_target(header):
    """The path a tus creation's Upload-Metadata names (src/handlers/tus/target.ts), None when it names
    none (the file then gets a random name)."""
    meta = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        meta[key] = base64.b64decode(value).decode() if value else ""
    name = meta.get("filename") or meta.get("name")
    if meta.get("path"):
        return meta["path"]
    if name:
        return f"{meta['dir'].rstrip('/')}/{name}" if meta.get("dir") else name
    return None


COMPLETION_PART = b"schemathesis completion"


def _known_uploads(case, operation, api):
    """Requests whose headers or body state an upload's content or progress get an upload in that
    state, made for them; every other case keeps its generated id (mostly unknown: 404).
    - A completion's sha256 names the bytes of the parts sent before: it completes an upload holding
      one known part, and names that part's sha256.
    - A tus PATCH names the offset and the size of an upload: it goes to a new upload whose size is
      its offset plus its body (so that it completes it), or deferred when the PATCH declares it.
    - A part must fit the size its upload declared (an upload made with tus has one): a part that
      would take a known upload past it goes to a new part upload instead."""
    upload_id = None
    if operation == "completeUpload" and isinstance(case.body, dict) and "sha256" in case.body:
        upload_id = api.upload_with_part(COMPLETION_PART)
        case.body["sha256"] = hashlib.sha256(COMPLETION_PART).hexdigest()
    elif operation == "tusPatch":
        _, offset = _header(case, "upload-offset")
        if _header(case, "upload-length")[1] is not None:
            upload_id = api.tus_upload({"Upload-Defer-Length": "1"})
        else:
            upload_id = api.tus_upload({"Upload-Length": str(int(offset or 0) + _body_length(case))})
    elif operation == "uploadPart":
        status = requests.get(api.url("uploadstatus", case.path_parameters["uploadId"]), timeout=TIMEOUT)
        if status.ok and status.json().get("totalSize") is not None:
            upload, part = status.json(), int(case.query["part"])
            others = sum(p["size"] for p in upload["parts"] if p["part"] != part)
            if others + len(_sent_body(case)) > upload["totalSize"]:
                upload_id = api.new_upload()
    if upload_id is not None:
        case.path_parameters["uploadId"] = upload_id


@schemathesis.hook
def before_call(context, case, kwargs):
    if not _positive(case) or "store" not in case.path_parameters:
        return
    operation = _operation_id(case)
    api = Api(case)
    _known_uploads(case, operation, api)
    _listed_folder(case, operation, api)
    _met_preconditions(case, operation, api)
    _matching_digests(case, operation)


@schemathesis.hook
def after_call(context, case, response):
    """opaque_download_bodies: a download's 2xx body is the stored bytes, labelled with the media type
    their uploader gave (PNG bytes stored as text/plain come back so, rightly). schemathesis would
    parse such a body as that type and report ST110. So it sees these bodies as what they are to the
    API, opaque bytes. Every other response, and the download's errors, are untouched."""
    if _operation_id(case) == "download" and 200 <= response.status_code < 300:
        response.headers["content-type"] = ["application/octet-stream"]
