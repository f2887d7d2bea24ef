"""Schemathesis hooks for storybook: who the generated requests are signed in as.

Loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS. Two accounts
sign the requests: an admin (made by the script with `storybook
create-admin`) for /api/admin/*, and an ordinary user for every other route
that needs a token. The generated requests include log-outs and
deactivations, so a token can stop working mid-run; schemathesis then asks
again (`retry_on` 401), and the user provider registers a new account when
its old one was deactivated. That keeps every later request signed in
instead of turning the rest of the run into 401s.
"""

import itertools
import json
import os
import urllib.error
import urllib.request

import schemathesis

BASE_URL = os.environ["STORYBOOK_URL"]
ADMIN_USERNAME = os.environ["STORYBOOK_ADMIN_USERNAME"]
ADMIN_PASSWORD = os.environ["STORYBOOK_ADMIN_PASSWORD"]
USER_PASSWORD = "schemathesis-user-password"
_user_numbers = itertools.count(1)
_current_user = {"username": None}


def _post(path, body):
    request = urllib.request.Request(
        BASE_URL + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _sign(case, token):
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=600).apply_to(path_regex="^/api/admin/")
class AdminAuth:
    def get(self, case, context):
        status, body = _post("/api/auth/login", {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        if status != 200:
            raise RuntimeError(f"the admin could not sign in again: {status}")
        return body["token"]

    def set(self, case, data, context):
        _sign(case, data)


@schemathesis.auth(refresh_interval=600).skip_for(path_regex="^/api/admin/")
class UserAuth:
    def get(self, case, context):
        if _current_user["username"]:
            status, body = _post(
                "/api/auth/login", {"username": _current_user["username"], "password": USER_PASSWORD}
            )
            if status == 200:
                return body["token"]
        # First use, or the account was deactivated by a generated admin request.
        while True:
            username = f"st_user_{next(_user_numbers)}"
            status, body = _post(
                "/api/auth/register",
                {"username": username, "email": f"{username}@example.com", "password": USER_PASSWORD},
            )
            if status == 201:
                _current_user["username"] = username
                return body["token"]
            if status != 409:
                raise RuntimeError(f"could not register {username}: {status}")

    def set(self, case, data, context):
        _sign(case, data)
