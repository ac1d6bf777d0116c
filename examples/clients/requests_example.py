"""The Python (requests) example of the Checkstack documentation, pointed at the hello plugin.

API_BASE=http://127.0.0.1:8000 API_KEY=ck_... python requests_example.py
"""

import os

import requests

API_BASE = os.environ.get("API_BASE", "https://your-checkstack-instance.com")
API_KEY = os.environ.get("API_KEY", "ck_YOUR_APP_ID_YOUR_SECRET")


def call_rpc(plugin_id: str, procedure: str, input_data=None):
    response = requests.post(
        f"{API_BASE}/api/{plugin_id}/",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json",
        },
        json={procedure: input_data or {}},
    )
    response.raise_for_status()
    return response.json()[procedure]


# Usage
greeting = call_rpc("hello", "getGreeting", {"name": "requests"})
print("single:", greeting)

# Batching multiple calls
response = requests.post(
    f"{API_BASE}/api/hello/",
    headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    json={"setGreeting": {"template": "Hey, {name}!"}, "getGreeting": {"name": "batch"}},
)
response.raise_for_status()
both = response.json()
print("batch:", both["setGreeting"], both["getGreeting"])

# Error handling
try:
    call_rpc("hello", "setGreeting", {"template": "no placeholder"})
except requests.HTTPError as error:
    body = error.response.json()
    print("error:", error.response.status_code, body["code"], body["message"])
