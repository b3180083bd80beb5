# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).
"""The order of the story across a play's hosts, for the role myseal.myseal.encrypt.

A replication group is a primary and the hosts that use it (its replicas and application hosts,
each naming it in myseal_primary, or the play's only primary). A stage of the story runs on the
hosts whose myseal_role it lists; a stage with `needs` waits, on each host, until every host of
those roles in its group has finished all the stages before it. Progress is the fact
_myseal_reached (the index of the last stage a host finished), so a host that failed, or that is
in a later serial batch, holds back its group and nobody else.

The groups are worked out once for the play (story_groups, in a run_once task): reading a host's
variables through hostvars costs the controller far more than a dictionary look-up, so the gates
read only the hosts of their own group."""

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


def story_groups(play_hosts, hostvars):
    """The play's replication groups: {'role': {host: role}, 'primary': {host: its primary},
    'members': {primary: [hosts of its group, itself first]}}. Raises on a host without a valid
    myseal_role, or whose primary is not clear."""
    role, named = {}, {}
    for host in play_hosts:
        role[host] = _var(hostvars, host, 'myseal_role')
        if role[host] not in ROLES:
            raise AnsibleFilterError('%s: myseal_role is %r: set it to primary, replica or app' % (host, role[host]))
        named[host] = _var(hostvars, host, 'myseal_primary')
    primaries = [h for h in play_hosts if role[h] == 'primary']
    primary = {}
    for host in play_hosts:
        if role[host] == 'primary':
            primary[host] = host
        elif named[host] is None:
            if len(primaries) != 1:
                raise AnsibleFilterError('%s (%s): myseal_primary is not set and the play has %d primaries (%s): name '
                                         'the one it uses' % (host, role[host], len(primaries),
                                                              ', '.join(primaries) or 'none'))
            primary[host] = primaries[0]
        elif role.get(named[host]) != 'primary':
            raise AnsibleFilterError('%s (%s): myseal_primary %s is not a host of this play with myseal_role primary'
                                     % (host, role[host], named[host]))
        else:
            primary[host] = named[host]
    members = dict((p, [p]) for p in primaries)
    for host in play_hosts:
        if role[host] != 'primary':
            members[primary[host]].append(host)
    return {'role': role, 'primary': primary, 'members': members}


def story_members(groups, host, role):
    """The hosts of `role` in `host`'s replication group, `host` aside."""
    return [h for h in groups['members'][groups['primary'][host]] if h != host and groups['role'][h] == role]


def _needed(groups, host, stage):
    needs = stage.get('needs') or []
    return [h for h in groups['members'][groups['primary'][host]] if h != host and groups['role'][h] in needs]


def story_waiting(groups, hostvars, host, index, story):
    """What stage `index` waits for on `host`: one line for each host of its group that has not finished
    a stage before it; empty when it may run."""
    index = int(index)
    out = []
    for other in _needed(groups, host, story[index]):
        role = groups['role'][other]
        try:
            reached = int(_var(hostvars, other, '_myseal_reached', -1))
        except (TypeError, ValueError):
            reached = -1
        for j in range(reached + 1, index):
            if role in story[j].get('roles', []):
                out.append("%s (%s) has not finished stage %d '%s' (failed, or not in this batch)"
                           % (other, role, j + 1, story[j].get('name')))
                break
    return out


def story_pending(groups, hostvars, host, index, story):
    """In check mode: the hosts of `host`'s group, of the roles stage `index` needs, whose earlier stages
    would change something (so this stage's plan would not show what a run does)."""
    return [h for h in _needed(groups, host, story[int(index)]) if _var(hostvars, h, '_myseal_pending', False)]


class FilterModule(object):
    """The story's order across hosts."""

    def filters(self):
        return {
            'story_groups': story_groups,
            'story_members': story_members,
            'story_waiting': story_waiting,
            'story_pending': story_pending,
        }
