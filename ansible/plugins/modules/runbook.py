#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: runbook
short_description: Run a myseal runbook on the managed host
version_added: 0.1.0
description:
  - Runs a myseal runbook (C(at-rest), C(in-transit), C(app-tomcat), C(rotate-certs), C(rotate-master-key), or a
    site runbook) on the managed host with C(myseal run --json --yes), and turns myseal's events into the task's
    result.
  - The task is C(changed) only when a step changed something; a second run of a completed runbook reports
    C(changed=false). A failed step fails the task with the runbook, the step and myseal's message.
  - In check mode it runs C(myseal plan --json) instead, which changes nothing on the host or the server;
    C(changed) then says whether a run would change something, and I(steps) which steps.
  - With C(--diff) it shows the diffs of the files the steps change or would change (option files, C(context.xml),
    C(setenv.sh)), as myseal computes them. Files that hold key material or secrets are named, not shown.
  - Warnings of the runbook (a table that cannot be encrypted, a session that would be cut off) become Ansible
    warnings.
author:
  - the myseal maintainers (!UNKNOWN)
requirements:
  - myseal on the managed host (the Debian package, or a build; see the role M(myseal.myseal.encrypt))
extends_documentation_fragment:
  - myseal.myseal.target
attributes:
  check_mode:
    support: full
    description: Runs C(myseal plan), which changes nothing.
  diff_mode:
    support: full
    description: The unified diffs of the files changed (or, in check mode, to be changed).
options:
  name:
    description:
      - The runbook (C(myseal list) lists them).
    type: str
    required: true
  steps:
    description:
      - Which steps to run or plan, as myseal's command line allows (one of the two keys). By default every step;
        steps already done are skipped either way.
    type: dict
    suboptions:
      only:
        description: Only this step (C(--only STEP)).
        type: str
      from:
        description: This step and the ones after it (C(--from STEP)).
        type: str
  resume:
    description:
      - Continue the last run of the runbook on this target, which was interrupted or failed (C(--resume)). A run
        that did not finish makes the next plain run fail, saying so; a resume with nothing to continue starts
        afresh. Not with I(steps).
    type: bool
    default: false
  runbooks:
    description:
      - Directories of site runbooks on the managed host, searched before the stock ones (C(--runbooks DIR) each).
    type: list
    elements: path
    default: []
'''

EXAMPLES = r'''
- name: Encryption at rest, with the key backup on another disk
  myseal.myseal.runbook:
    name: at-rest
    site: /etc/myseal/site.ini
    set:
      keyring.backup_dir: /srv/key-backup

- name: TLS, the connection password given by the vault
  myseal.myseal.runbook:
    name: in-transit
    site: /etc/myseal/site.ini
    secrets:
      connection.password: "{{ vault_db_admin_password }}"

- name: Only the key backup again
  myseal.myseal.runbook:
    name: at-rest
    site: /etc/myseal/site.ini
    steps:
      only: key-backup
'''

RETURN = r'''
steps:
  description: Each step as myseal reported it, in order.
  returned: when myseal ran the runbook
  type: list
  elements: dict
  contains:
    name:
      description: The step.
      type: str
    state:
      description: >-
        C(changed) or C(unchanged) (applied in a run), C(todo) (to apply, in check mode), C(done) (already done),
        C(ok) (a check or verification passed), C(skipped) (not for this server or these parameters),
        C(failed), C(reverted).
      type: str
    reason:
      description: Why the step was to do, as its check said.
      type: str
      returned: when the step was to do
    error:
      description: Why the step failed.
      type: str
      returned: when the step failed
    seconds:
      description: How long the step took.
      type: float
    effects:
      description: One line for each effect (SQL statement, file, command, restart), secrets masked.
      type: list
      elements: str
    log:
      description: The step's log lines.
      type: list
      elements: str
  sample:
    - name: option-file
      state: changed
      reason: "to set: plugin_load_add, file_key_management_filename"
      seconds: 0.007
      effects: ["write /etc/mysql/mariadb.conf.d/99-myseal.cnf"]
      log: []
changed_steps:
  description: The steps that changed something (in check mode, that would).
  returned: when myseal ran the runbook
  type: list
  elements: str
  sample: [key-material, key-backup, option-file, restart]
step:
  description: The step that failed.
  returned: when a step failed
  type: str
  sample: preflight
result:
  description: myseal's result event (C(status), the counts C(changed), C(done), C(todo), C(skipped), C(seconds),
    and the C(journal) of a run).
  returned: when myseal ran the runbook
  type: dict
  sample: {status: ok, changed: 4, done: 3, todo: 0, skipped: 2, seconds: 0.46, journal: /root/.local/state/...}
rc:
  description: myseal's exit status (0 done, 1 a step failed, 2 bad usage or bad input).
  returned: always
  type: int
  sample: 0
stderr:
  description: What myseal wrote to its standard error (secrets masked by myseal).
  returned: when myseal failed
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.myseal.myseal.plugins.module_utils import myseal


def runbook_argv(module):
    """The myseal command line: plan in check mode, run otherwise."""
    p = module.params
    if module.check_mode:
        argv = ['plan', p['name']]
    else:
        argv = ['run', p['name'], '--yes']
        if p['resume']:
            argv.append('--resume')
    argv += myseal.target_argv(p)
    steps = p['steps'] or {}
    if steps.get('only'):
        argv += ['--only', steps['only']]
    if steps.get('from'):
        argv += ['--from', steps['from']]
    for d in p['runbooks']:
        argv += ['--runbooks', d]
    return argv + ['--json']


def file_diff(effect):
    """Ansible's diff of one file effect: myseal's unified diff, or a line naming a file it does not show."""
    detail = effect.get('detail') or ''
    if detail.startswith('--- '):
        return {'prepared': detail if detail.endswith('\n') else detail + '\n'}
    return {'prepared': '%s: %s\n' % (effect.get('path'), detail or effect.get('summary'))}


def collect(module, events):
    """The per-step list, the diffs and the result event; warnings go to Ansible."""
    steps, by_name, diffs, result = [], {}, [], None
    for e in events:
        kind = e.get('event')
        name = e.get('step')
        if kind == 'step' and e.get('state') == 'start':
            by_name[name] = {'name': name, 'state': 'start', 'effects': [], 'log': []}
            steps.append(by_name[name])
        elif kind == 'step' and name in by_name:
            s = by_name[name]
            s['state'] = e.get('state')
            s['seconds'] = e.get('seconds')
            for field in ('reason', 'error'):
                if e.get(field):
                    s[field] = e[field]
        elif kind == 'effect':
            if name in by_name:
                by_name[name]['effects'].append(e.get('summary'))
            if e.get('kind') == 'file':
                diffs.append(file_diff(e))
        elif kind == 'log':
            where = ('%s, step %s' % (module.params['name'], name)) if name else module.params['name']
            if e.get('level') == 'warn':
                module.warn('%s: %s' % (where, e.get('message')))
            if name in by_name:
                by_name[name]['log'].append(e.get('message'))
        elif kind == 'result':
            result = dict((k, v) for k, v in e.items() if k != 'event')
    return steps, diffs, result


def main():
    spec = dict(
        name=dict(type='str', required=True),
        steps=dict(type='dict', options={'only': dict(type='str'), 'from': dict(type='str')},
                   mutually_exclusive=[('only', 'from')]),
        resume=dict(type='bool', default=False),
        runbooks=dict(type='list', elements='path', default=[]),
    )
    spec.update(myseal.TARGET_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=myseal.TARGET_EXCLUSIVE, required_one_of=myseal.TARGET_REQUIRED)
    myseal.check_names(module)
    if module.params['resume'] and module.params['steps']:
        module.fail_json(msg='resume continues where the last run stopped: not with steps')

    rc, out, err = myseal.run(module, runbook_argv(module))
    steps, diffs, result = collect(module, myseal.events(out))
    if result is None:
        module.fail_json(msg=myseal.failure(rc, err), rc=rc, stderr=err)

    want = 'todo' if module.check_mode else 'changed'
    changed_steps = [s['name'] for s in steps if s['state'] == want]
    ret = dict(changed=len(changed_steps) > 0, steps=steps, changed_steps=changed_steps, result=result, rc=rc)
    if module._diff and diffs:
        ret['diff'] = diffs
    if rc != 0 or result.get('status') != 'ok':
        failed = [s['name'] for s in steps if s['state'] == 'failed']
        if failed:
            ret['step'] = failed[0]
        module.fail_json(msg=result.get('error') or myseal.failure(rc, err), stderr=err, **ret)
    module.exit_json(**ret)


if __name__ == '__main__':
    main()
