#!/bin/sh
# Runs test_openai_client.py with the venv .ci/test makes (build/.venv, pinned openai and
# prometheus_client). Without it the test is skipped (77), unless IGNIS_REQUIRE_ASSETS=1.
py="$IGNIS_VENV/bin/python"
if ! [ -x "$py" ] || ! "$py" -c "import openai, prometheus_client" 2>/dev/null; then
  if [ "$IGNIS_REQUIRE_ASSETS" = 1 ]; then
    echo "error: no venv with openai and prometheus_client at $IGNIS_VENV (run .ci/test)" >&2
    exit 1
  fi
  echo "skipping: no venv with openai and prometheus_client at $IGNIS_VENV (run .ci/test)"
  exit 77
fi
exec "$py" "$(dirname "$0")/test_openai_client.py"
