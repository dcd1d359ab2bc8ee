"""What a deployment and the tools that drive it from outside agree on: HTTP header names, request
limits and the file names in a server's state folder.

Serving defines its API with these values; drills, the Chaos Toolkit adapter and the CLI talk to a
deployment with them. Neither side imports the other for them, so a drill runs the same against a
local server or a Ray Serve cluster, and a value changes in one place.

Example:
    >>> from pathlib import Path
    >>> API_KEY_HEADER, (Path("state") / FEEDBACK_DB).as_posix()
    ('X-API-Key', 'state/feedback.db')
"""

from __future__ import annotations

# -- HTTP ------------------------------------------------------------------------------------------
API_KEY_HEADER = "X-API-Key"  # every endpoint but the probes and /metrics takes a key here
WORKER_HEADER = "X-Recdrill-Worker"  # the pid of the worker that answered (local backend)

# -- request limits (the API refuses more with a 422) ----------------------------------------------
MAX_K = 100  # items per recommendation list
MAX_HISTORY = 200  # item ids in a request's history
MAX_LOOKUP = 10_000  # event ids in one feedback lookup
MAX_ID_CHARS = 128  # a user, item or event id
# A registry version name: 1-64 of letters, digits, '.', '_' and '-', starting with a letter or a
# digit, never '..' (it names a folder). Written without look-arounds: JSON Schema and pydantic's
# regex engine both read it.
VERSION_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"
MAX_VERSION_CHARS = 64

# -- a server's state folder (``--state-dir``), shared by its workers ------------------------------
FEEDBACK_DB = "feedback.db"  # the durable feedback log (and its quarantine)
FAULTS_DB = "faults.db"  # in-process faults every worker sees
AUDIT_DB = "audit.db"  # who called what, and what was refused
SERVED_MODEL_FILE = "served_model.json"  # the model a reload put in place, followed by every worker
CANARY_FILE = "canary.json"  # the running canary, followed by every worker
ANOMALY_LOCK = "anomaly.lock"  # held by the one worker that judges feedback for anomalies
