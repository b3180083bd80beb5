# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).
"""The order of the story across a play's hosts, for the role myseal.myseal.encrypt.

A replication group is a primary and the hosts that use it (its replicas and application hosts,
each naming it in myseal_primary, or the play's only primary). A stage of the story runs on the
hosts whose myseal_role it lists; a stage with `needs` waits, on each host, until every host of
those roles in its group has finished all the stages before it. Progress is the fact
_myseal_reached (the index of the last stage a host finished), so a host that failed, or that is
in a later serial batch, holds back its group and nobody else."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

ROLES = ('primary', 'replica', 'app')


def _var(hostvars, host, name, default=None):
    try:
        value = hostvars[host][name]
    except KeyError:
        return default
    return default if value is None else value


def story_primary(play_hosts, hostvars, host):
    """The primary of `host`'s replication group (itself for a primary)."""
    role = _var(hostvars, host, 'myseal_role')
    if role not in ROLES:
        raise AnsibleFilterError('%s: myseal_role is %r: set it to primary, replica or app' % (host, role))
    if role == 'primary':
        return host
    named = _var(hostvars, host, 'myseal_primary')
    primaries = [h for h in play_hosts if _var(hostvars, h, 'myseal_role') == 'primary']
    if named is None:
        if len(primaries) != 1:
            raise AnsibleFilterError('%s (%s): myseal_primary is not set and the play has %d primaries (%s): name the '
                                     'one it uses' % (host, role, len(primaries), ', '.join(primaries) or 'none'))
        return primaries[0]
    if named not in primaries:
        raise AnsibleFilterError('%s (%s): myseal_primary %s is not a host of this play with myseal_role primary'
                                 % (host, role, named))
    return named


def _group(play_hosts, hostvars, host):
    # each host keeps its primary in _myseal_primary once the role has started on it; a host of a later
    # serial batch has not, and is asked from its inventory variables
    def primary_of(h):
        return _var(hostvars, h, '_myseal_primary') or story_primary(play_hosts, hostvars, h)
    primary = primary_of(host)
    return [h for h in play_hosts if primary_of(h) == primary]


def story_members(play_hosts, hostvars, host, role):
    """The hosts of `role` in `host`'s replication group, `host` aside."""
    return [h for h in _group(play_hosts, hostvars, host) if h != host and _var(hostvars, h, 'myseal_role') == role]


def _reached(hostvars, host):
    try:
        return int(_var(hostvars, host, '_myseal_reached', -1))
    except (TypeError, ValueError):
        return -1


def story_waiting(play_hosts, hostvars, host, index, story):
    """What stage `index` waits for on `host`: one line for each host of its group that has not finished
    a stage before it; empty when it may run."""
    index = int(index)
    needs = story[index].get('needs') or []
    out = []
    for other in _group(play_hosts, hostvars, host):
        role = _var(hostvars, other, 'myseal_role')
        if other == host or role not in needs:
            continue
        reached = _reached(hostvars, other)
        for j in range(reached + 1, index):
            if role in story[j].get('roles', []):
                out.append("%s (%s) has not finished stage %d '%s' (failed, or not in this batch)"
                           % (other, role, j + 1, story[j].get('name')))
                break
    return out


def story_pending(play_hosts, hostvars, host, index, story):
    """In check mode: the hosts of `host`'s group, of the roles stage `index` needs, whose earlier stages
    would change something (so this stage's plan would not show what a run does)."""
    needs = story[int(index)].get('needs') or []
    return [h for h in _group(play_hosts, hostvars, host)
            if h != host and _var(hostvars, h, 'myseal_role') in needs and _var(hostvars, h, '_myseal_pending', False)]


class FilterModule(object):
    """The story's order across hosts."""

    def filters(self):
        return {
            'story_primary': story_primary,
            'story_members': story_members,
            'story_waiting': story_waiting,
            'story_pending': story_pending,
        }
