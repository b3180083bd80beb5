# -*- coding: utf-8 -*-
# Copyright: 2026 the myseal maintainers
# No licence has been published for myseal yet (see COPYING).

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # The options that name the server and its parameters, shared by every module.
    DOCUMENTATION = r'''
options:
  site:
    description:
      - The site profile on the managed host (an INI file; C(runbooks/site.example.ini) in the source,
        C(/usr/share/doc/myseal/examples/site.example.ini) once the package is installed, documents every key).
      - Passed as C(--site). One of I(site) or I(sandbox) is required.
    type: path
  sandbox:
    description:
      - A running myseal sandbox on the managed host (C(myseal sandbox start)), for rehearsals. Passed as
        C(--sandbox); I(site) may not go with it here.
    type: str
  set:
    description:
      - Parameters, C(section.key) to value, each passed as C(--set section.key=value). They beat the profile.
      - A boolean becomes C(true) or C(false), a list its items joined by commas.
      - Never a secret here (the command line is visible to every user of the host); use I(secrets).
    type: dict
    default: {}
  secrets:
    description:
      - Secret parameters, C(section.key) to the secret itself (for example C(connection.password) or
        C(tomcat.truststore_password)), for secrets the profile does not name a source for.
      - They reach myseal only on its standard input (C(--secrets-stdin), one JSON object), never on its
        command line or in its environment. The option is C(no_log), so
        Ansible masks the values in its output and its log, and myseal masks them in its own.
    type: dict
    default: {}
  myseal:
    description:
      - The myseal program on the managed host, a path or a name looked up in C(PATH).
    type: str
    default: myseal
  state_dir:
    description:
      - The state directory (journals, locks, sandboxes) myseal uses, as C(MYSEAL_STATE_DIR). By default myseal's
        own (C($XDG_STATE_HOME/myseal), else C(~/.local/state/myseal)).
    type: path
notes:
  - Secrets are handed to myseal in its environment. Enable pipelining (C(pipelining=True)) so that the module's
    arguments, secrets included, reach the managed host on standard input rather than in a temporary file.
'''
