#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: check
short_description: The myseal posture report of the managed host, as facts
version_added: 0.1.0
description:
  - Runs C(myseal check --format json) on the managed host, which reads the server and changes nothing, and returns
    the report as the fact C(myseal_check) (C(ansible_facts.myseal_check)).
  - The report (schema C(myseal.check/2)) has C(status) (the worst severity), C(summary) (findings by severity) and
    C(findings), each with a stable C(id), C(area), C(severity) (C(ok), C(info), C(warn), C(fail)), C(title) and,
    when it asks for work, C(fix) (the runbook and step that do it). C(docs/check.md) in the source describes it.
  - The task never reports C(changed). It fails only when myseal cannot make the report, or when I(fail_on) says so.
author:
  - the myseal maintainers (!UNKNOWN)
requirements:
  - myseal on the managed host
extends_documentation_fragment:
  - myseal.myseal.target
attributes:
  check_mode:
    support: full
    description: The report is read-only; it is made in check mode too.
  diff_mode:
    support: none
    description: The report changes nothing, so there is nothing to show.
  facts:
    support: full
    description: The report is the fact C(myseal_check).
options:
  fail_on:
    description:
      - Fail the task when a finding is at least this severe (C(warn) or C(fail)); C(never) returns the report
        whatever it says.
    type: str
    choices: [never, warn, fail]
    default: never
'''

EXAMPLES = r'''
- name: Posture of every database server
  myseal.myseal.check:
    site: /etc/myseal/site.ini

- name: The findings that still fail
  ansible.builtin.debug:
    msg: "{{ myseal_check.findings | selectattr('severity', 'equalto', 'fail') | map(attribute='id') | list }}"

- name: For monitoring, fail the host when anything warns
  myseal.myseal.check:
    site: /etc/myseal/site.ini
    fail_on: warn
'''

RETURN = r'''
ansible_facts:
  description: The report.
  returned: when myseal made a report
  type: complex
  contains:
    myseal_check:
      description: The report as C(myseal check --format json) prints it.
      type: dict
      sample:
        schema: myseal.check/2
        target: site db1
        server: MariaDB 10.11.6
        status: fail
        summary: {ok: 9, info: 3, warn: 1, fail: 2}
        findings:
          - {id: at-rest:restart, area: at rest, severity: fail, title: the keyring is not active in the server,
             runbook: at-rest, step: restart, fix: {runbook: at-rest, step: restart}}
status:
  description: The report's status (the worst severity; C(info) counts as C(ok)).
  returned: when myseal made a report
  type: str
  sample: fail
summary:
  description: The number of findings of each severity.
  returned: when myseal made a report
  type: dict
  sample: {ok: 9, info: 3, warn: 1, fail: 2}
rc:
  description: myseal's exit status, when it made no report (2 for bad usage).
  returned: when myseal made no report
  type: int
'''

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.myseal.myseal.plugins.module_utils import myseal

RANK = {'ok': 0, 'info': 0, 'warn': 1, 'fail': 2}


def main():
    spec = dict(fail_on=dict(type='str', choices=['never', 'warn', 'fail'], default='never'))
    spec.update(myseal.TARGET_ARGS)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=myseal.TARGET_EXCLUSIVE, required_one_of=myseal.TARGET_REQUIRED)
    myseal.check_names(module)

    # exit status 1 means a finding fails: the report is still printed; fail_on decides below
    rc, out, err = myseal.run(module, ['check', '--format', 'json'] + myseal.target_argv(module.params))
    try:
        report = json.loads(out) if rc in (0, 1) else None
    except ValueError:
        report = None
    if not isinstance(report, dict) or 'findings' not in report:
        module.fail_json(msg=myseal.failure(rc, err), rc=rc, stderr=err)

    # no rc here: Ansible fails any task whose result has a non-zero rc, and 1 only says a finding fails
    ret = dict(changed=False, ansible_facts={'myseal_check': report}, status=report.get('status'),
               summary=report.get('summary'))
    limit = module.params['fail_on']
    if limit != 'never':
        bad = [f['id'] for f in report['findings'] if RANK.get(f.get('severity'), 2) >= RANK[limit]]
        if bad:
            noun = 'finding' if len(bad) == 1 else 'findings'
            module.fail_json(msg='%d %s at %s or worse: %s' % (len(bad), noun, limit, ', '.join(bad)), **ret)
    module.exit_json(**ret)


if __name__ == '__main__':
    main()
