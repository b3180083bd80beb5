# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).
"""The site profile of a host, written from the role's variables (myseal_site)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from jinja2.runtime import Undefined

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

# The sections of site.example.ini, in its order; others follow, sorted (a site runbook's own).
SECTIONS = ('site', 'server', 'connection', 'keyring', 'at_rest', 'rotate', 'pki', 'tls', 'accounts', 'replication',
            'tomcat', 'check')

SECTION_NAME = re.compile(r'^[A-Za-z0-9_.-]+$')
KEY_NAME = re.compile(r'^[^\s=\[\]#;][^=\r\n]*$')


def _value(source, section, key, value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return ', '.join(_value(source, section, key, v) for v in value)
    if isinstance(value, dict):
        raise AnsibleFilterError('%s.%s.%s: a value, not a dict' % (source, section, key))
    text = to_text(value)
    if re.search(r'[\r\n\0]', text) or re.search(r'\s#', text) or text != text.strip():
        raise AnsibleFilterError('%s.%s.%s: %r cannot be written in a profile (a newline, a " #" that would start a '
                                 'comment, or spaces at either end)' % (source, section, key, text))
    return text


def site_ini(site, host, omit=None, source='myseal_site'):
    """The profile text: the sections of `site` (section -> {key: value}) but those in `omit`, with
    [site] name defaulting to `host`."""
    if isinstance(site, Undefined):
        return site  # Ansible says which variable is undefined
    if not isinstance(site, dict):
        raise AnsibleFilterError('%s: a dict of sections, not %s' % (source, type(site).__name__))
    omit = set(omit or [])
    sections = dict((k, dict(v or {})) for k, v in site.items() if k not in omit)
    for name, keys in site.items():
        if keys is not None and not isinstance(keys, dict):
            raise AnsibleFilterError('%s.%s: a dict of keys, not %s' % (source, name, type(keys).__name__))
    sections.setdefault('site', {}).setdefault('name', host)
    order = [s for s in SECTIONS if s in sections] + sorted(s for s in sections if s not in SECTIONS)
    lines = ['# Written by the role myseal.myseal.encrypt for %s from %s; changes here are overwritten.'
             % (host, source)]
    for name in order:
        if not SECTION_NAME.match(name):
            raise AnsibleFilterError('%s: %r is not a section name' % (source, name))
        lines += ['', '[%s]' % name]
        for key in sorted(sections[name]):
            value = sections[name][key]
            if value is None:
                continue
            if not KEY_NAME.match(to_text(key)) or to_text(key) != to_text(key).strip():
                raise AnsibleFilterError('%s.%s: %r is not a key a profile can hold' % (source, name, key))
            lines.append('%s = %s' % (key, _value(source, name, key, value)))
    return '\n'.join(lines) + '\n'


class FilterModule(object):
    """The site profile."""

    def filters(self):
        return {'site_ini': site_ini}
