#!/usr/bin/env bash
# Mutation testing (mutmut 2.x) of the modules that decide who gets mail and what happens to it:
# each small change mutmut makes to a module must make that module's focused tests fail.
# Not part of CI: it runs the tests once per mutant (minutes for a unit-tested module, up to
# an hour for one tested through the database). Results and survivors: .mutmut/<name>/.
# A mutant inside a function runs only the focused tests that reached that function
# (scripts/mutation_select.py); one at module level runs them all.
#
#   bash scripts/mutate.sh              # every module below, one after another
#   bash scripts/mutate.sh tokens rules # only these
#   bash scripts/mutate.sh --list       # the names, files and tests
#   MUTATE_RESUME=1 bash scripts/mutate.sh policy  # carry on; after new tests, try survivors
#
# It mutates a copy of the working tree (tracked files), never the tree itself, so an
# interrupted run leaves no mutant behind. Tests run on SQLite (--backend sqlite), -x.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="${PYTHON_VENV:-$ROOT/.venv/bin/python}"

# name | module to mutate | its focused tests (space-separated)
TARGETS=(
  "tokens|clarion/tokens.py|tests/unit/test_tokens.py"
  "rules|clarion/bounce_classify/rules.py|tests/unit/bounce_classify/test_rule_phrases.py tests/unit/bounce_classify"
  "verdict|clarion/bounce_classify/verdict.py|tests/unit/bounce_classify"
  "policy|clarion/bounces/policy.py|tests/integration/bounces/test_bounce_policy.py"
  "subscribers|clarion/audience/subscribers.py|tests/integration/audience/test_subscribe.py tests/integration/audience/test_confirm.py tests/integration/audience/test_unsubscribe.py tests/integration/audience/test_preferences.py"
  "eligibility|clarion/delivery/ledger.py|tests/integration/delivery/test_ledger.py"
  "sending|clarion/delivery/sending.py|tests/integration/delivery/test_sending_states.py tests/integration/delivery/test_send_permissions.py tests/integration/delivery/test_delivery.py tests/integration/alerts/test_hashtag_days.py"
  "signing|clarion/actions/signing.py|tests/integration/actions/test_signing_rules.py tests/integration/actions/test_petition_signing.py tests/integration/actions/test_petition_prefill.py tests/integration/actions/test_signature_mail_limits.py"
  "clicks|clarion/tracking/clicks.py|tests/integration/tracking/test_clickthrough.py"
  "import_consent|clarion/audience/import_writer.py|tests/integration/audience/test_import_writer.py"
  "apitokens|clarion/integrations/apitokens.py|tests/integration/integrations/test_api_tokens.py"
)

list_targets() {
  for target in "${TARGETS[@]}"; do
    IFS="|" read -r name module tests <<<"$target"
    printf "%-15s %-38s %s\n" "$name" "$module" "$tests"
  done
}

run_target() {
  local name=$1 module=$2 tests=$3
  local base="$ROOT/.mutmut/$name"
  if [ "${MUTATE_RESUME:-}" != "1" ] || [ ! -d "$base/tree" ]; then
    rm -rf "$base" && mkdir -p "$base/tree"
    # The bounce corpus lives beside the project; the copy sees it at the same relative place.
    if [ -d "$ROOT/../shared" ]; then ln -s "$(cd "$ROOT/../shared" && pwd)" "$base/shared"; fi
  fi
  # A resumed run gets today's code and tests; mutmut keeps what it killed and tries again
  # every survivor whose tests have changed since.
  git ls-files -z | xargs -0 cp --parents -t "$base/tree"
  echo "== $name: mutating $module, running $tests"
  local status=0
  # pytest through the hook file: a mutant that breaks a test file's import counts as killed.
  export MUTATE_PYTEST="$PY mutmut_config.py test -x -q -p no:cacheprovider --backend sqlite"
  (
    cd "$base/tree"
    # Per-mutant test selection: one run under coverage says which tests reach each function;
    # the hook (mutmut_config.py) then runs only those for a mutant in that function.
    cp "$ROOT/scripts/mutation_select.py" mutmut_config.py
    printf '[run]\ndynamic_context = test_function\ninclude = %s\n' "$module" >.mutmut-coveragerc
    "$PY" -m coverage run --rcfile=.mutmut-coveragerc --data-file=.mutmut-coverage \
      -m pytest -q -p no:cacheprovider --backend sqlite $tests
    "$PY" mutmut_config.py build "$module"
    "$PY" -m mutmut run --paths-to-mutate "$module" --tests-dir tests \
      --runner "$MUTATE_PYTEST $tests" --simple-output --no-progress
  ) >"$base/run.log" 2>&1 || status=$?
  # (Do not run `mutmut show` in the copy meanwhile: it writes to the cache the run is using.)
  # mutmut's exit status is a bit mask: 1 a fatal error; 2, 4, 8 survivors, timeouts, slow.
  if [ $((status & 1)) -ne 0 ]; then
    echo "mutmut failed; see $base/run.log" >&2
    tail -20 "$base/run.log" >&2
    return 1
  fi
  (cd "$base/tree" && "$PY" "$ROOT/scripts/mutation_report.py" "$name" "$module") \
    | tee "$base/report.txt"
}

main() {
  if [ "${1:-}" = "--list" ]; then list_targets; return; fi
  "$PY" -c "import mutmut" 2>/dev/null || {
    echo "mutmut is not installed: .venv/bin/pip install -e '.[mutation]'" >&2; return 1; }
  local wanted=("$@") found
  for target in "${TARGETS[@]}"; do
    IFS="|" read -r name module tests <<<"$target"
    if [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" $name "* ]]; then
      run_target "$name" "$module" "$tests"
    fi
  done
  for name in "${wanted[@]}"; do
    found=$(list_targets | awk -v n="$name" '$1 == n')
    [ -n "$found" ] || echo "no such target: $name (see --list)" >&2
  done
}

main "$@"
