#!/bin/sh
# shellcheck disable=SC2317  # the functions below run through check()
# ansible/tests/sanity/run.sh: ansible-test sanity on the collection, offline, then ansible-lint.
# ansible-test gives seven of its tests (ansible-doc, import, pep8, pylint, runtime-metadata,
# validate-modules, yamllint) pinned tools that it installs with pip into virtual environments, which
# needs the network. Six of them run here instead with ansible-test's own scripts and settings, on
# Debian's packages (pycodestyle, pylint, voluptuous, yamllint); import does not (the specs import
# and run the modules). Entries of ignore-2.14.txt apply to validate-modules here too.
# Prints "sanity: TEST ok" or the findings and "sanity: TEST FAILED"; exits 1 when one failed.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/myseal-sanity-XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/ansible_collections/myseal/myseal
mkdir -p "$work/ansible_collections/myseal"
cp -r "$src" "$root"
rm -rf "$root/tests/output"
cd "$root" || exit 1

py=/usr/bin/python3
sanity=$("$py" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_util/controller/sanity
version=$(sed -n 's/^version: *//p' galaxy.yml)
ignores=tests/sanity/ignore-2.14.txt
export ANSIBLE_COLLECTIONS_PATH="$work" PYTHONPATH="$work" ANSIBLE_NOCOLOR=1
modules=$(ls plugins/modules/*.py)
python=$(find plugins -name '*.py' | sort)
yaml=$(find . -name '*.yml' -not -path './tests/output/*' | sort)
failed=0

check() {
  name=$1
  shift
  if "$@" >"$work/out" 2>&1 && [ ! -s "$work/findings" ]; then
    echo "sanity: $name ok"
  else
    cat "$work/out" "$work/findings" 2>/dev/null
    echo "sanity: $name FAILED"
    failed=1
  fi
  rm -f "$work/findings"
}

skip=""
for t in ansible-doc import pep8 pylint runtime-metadata validate-modules yamllint; do
  skip="$skip --skip-test $t"
done
# shellcheck disable=SC2086
check ansible-test ansible-test sanity --local --python 3.11 $skip

# ansible-doc: every module, as text and as JSON, with nothing on stderr
doc() {
  for fmt in "" --json; do
    # shellcheck disable=SC2046,SC2086
    ansible-doc -t module $fmt $(echo "$modules" | sed 's|plugins/modules/\(.*\)\.py|myseal.myseal.\1|') \
      >/dev/null 2>"$work/findings" || return 1
  done
  ansible-doc -t role myseal.myseal.encrypt >/dev/null 2>>"$work/findings"
}
check ansible-doc doc

# shellcheck disable=SC2086
check pep8 "$py" -m pycodestyle --max-line-length 160 --config /dev/null \
  --ignore "$(paste -sd, "$sanity/pep8/current-ignore.txt")" $python

# shellcheck disable=SC2086
check pylint env PYTHONPATH="$work:$sanity/pylint/plugins" PYLINTHOME="$work/pylint" \
  ANSIBLE_TEST_MODULES_PATH="$root/plugins/modules/" ANSIBLE_TEST_MODULE_UTILS_PATH="$root/plugins/module_utils/" "$py" -m pylint \
  --jobs 0 --reports n --max-line-length 160 --max-complexity 20 --rcfile "$sanity/pylint/config/collection.cfg" \
  --load-plugins deprecated,pylint.extensions.mccabe,string_format,unwanted \
  --collection-name myseal.myseal --collection-version "$version" $python

validate() {
  # shellcheck disable=SC2086
  "$py" "$sanity/validate-modules/validate.py" --format json --arg-spec --collection ansible_collections/myseal/myseal \
    --collection-version "$version" $modules >"$work/validate.json"
  [ $? -le 3 ] || return 1
  "$py" - "$work/validate.json" "$ignores" >"$work/findings" <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))
ignored = set(tuple(line.split()) for line in open(sys.argv[2]) if line.strip())
for path, result in sorted(found.items()):
    for e in result['errors']:
        if (path, 'validate-modules:' + e['code']) not in ignored:
            print('%s:%s: %s: %s' % (path, e.get('line', 0), e['code'], e['msg']))
PY
}
check validate-modules validate

# shellcheck disable=SC2086
check runtime-metadata sh -c "\"$py\" \"$sanity/code-smell/runtime-metadata.py\" meta/runtime.yml >\"$work/findings\""

check yamllint sh -c "echo \"$yaml $python\" | tr ' ' '\n' | \"$py\" \"$sanity/yamllint/yamllinter.py\" | \
  \"$py\" -c 'import json, sys; [print(m) for m in json.load(sys.stdin)[\"messages\"]]' >\"$work/findings\""

check ansible-lint ansible-lint --offline --nocolor

exit "$failed"
