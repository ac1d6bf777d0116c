#!/usr/bin/env bash
# The curl examples of the Checkstack documentation, pointed at the hello plugin.
#   API_BASE=http://127.0.0.1:8000 API_KEY=ck_... ./curl.sh
set -euo pipefail
: "${API_BASE:?set API_BASE, e.g. http://127.0.0.1:8000}"
: "${API_KEY:?set API_KEY to an application token (ck_...)}"

echo "# single call"
curl -sS -X POST "$API_BASE/api/hello/" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"getGreeting": {"name": "curl"}}'
echo

echo "# batch"
curl -sS -X POST "$API_BASE/api/hello/" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"setGreeting": {"template": "Howdy, {name}!"}, "getGreeting": {"name": "batch"}}'
echo

echo "# error handling: the status code and the error body"
status=$(curl -sS -o /tmp/checkstack-error.json -w '%{http_code}' -X POST "$API_BASE/api/hello/" \
  -H "Authorization: Bearer $API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"setGreeting": {"template": "no placeholder"}}')
echo "HTTP $status"
cat /tmp/checkstack-error.json
echo
