# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).
"""What the myseal modules share: the options that name a target, the command line they make,
the standard input that carries secrets to myseal, and the JSON events myseal prints."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

# The options every module takes (their documentation is the doc fragment in each module).
TARGET_ARGS = dict(
    site=dict(type='path'),
    sandbox=dict(type='str'),
    set=dict(type='dict', default={}),
    secrets=dict(type='dict', default={}, no_log=True),
    myseal=dict(type='str', default='myseal'),
    state_dir=dict(type='path'),
)
TARGET_EXCLUSIVE = [('site', 'sandbox')]
TARGET_REQUIRED = [('site', 'sandbox')]

PARAM_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\.[^=\s]+$')


def value_text(value):
    """A --set value as myseal reads it: booleans true/false, lists comma-separated."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return ', '.join(value_text(v) for v in value)
    return '%s' % (value,)


def check_names(module):
    """Fails the task when a set or secrets key is not section.key, or is in both."""
    params = module.params
    for option in ('set', 'secrets'):
        for name in params[option]:
            if not PARAM_NAME.match(name):
                module.fail_json(msg="%s: '%s' is not a parameter name (section.key)" % (option, name))
    both = sorted(set(params['set']) & set(params['secrets']))
    if both:
        module.fail_json(msg='set and secrets both give %s: a secret goes in secrets only' % ', '.join(both))


def target_argv(params):
    """--site/--sandbox, the --set arguments and --secrets-stdin when there are secrets (never a
    secret itself: those go on standard input)."""
    argv = []
    if params['site']:
        argv += ['--site', params['site']]
    if params['sandbox']:
        argv += ['--sandbox', params['sandbox']]
    for name in sorted(params['set']):
        argv += ['--set', '%s=%s' % (name, value_text(params['set'][name]))]
    if params['secrets']:
        argv.append('--secrets-stdin')
    return argv


def child_env(params):
    """The variables added to myseal's environment: the state directory."""
    env = {}
    if params['state_dir']:
        env['MYSEAL_STATE_DIR'] = params['state_dir']
    return env


def secrets_stdin(params):
    """What --secrets-stdin reads: the secrets as one JSON object, or None without secrets."""
    if not params['secrets']:
        return None
    return json.dumps(dict((name, value_text(v)) for name, v in params['secrets'].items()))


def executable(module):
    """The myseal program: a path, or a name looked up in PATH."""
    name = module.params['myseal']
    if '/' in name:
        return name
    return module.get_bin_path(name, required=True)


def run(module, argv):
    """Runs myseal with argv (no shell, no expansion); returns rc, stdout, stderr."""
    return module.run_command([executable(module)] + argv, environ_update=child_env(module.params),
                              data=secrets_stdin(module.params), expand_user_and_vars=False)


def events(stdout):
    """The JSON events of --json output, one object a line (other lines are ignored)."""
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith('{'):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def failure(rc, stderr):
    """myseal's own message for a command that printed no result (bad usage: exit 2)."""
    lines = [re.sub(r'^myseal: ', '', ln) for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return 'myseal exited with status %d and said nothing' % rc
    return '\n'.join(lines)
