"""Declarative task graphs: workflows written as JSON or YAML files, compiled onto the engine.

``model`` (what a definition is), ``expressions`` (``${...}`` and conditions, parsed, never eval'ed),
``validate`` (located one-line errors), ``compiler`` (a graph as a registered workflow whose tasks are
recorded steps) and ``ports`` (what a host provides: HTTP, databases, local processes) are standard
library only and run in the Worker too. ``files`` (PyYAML: the CLI side only) reads the files;
``cloudflare`` (the Worker only) fills the ports from ``fetch`` and D1; the local runtime's ports are
`flareflow.local.graphtasks`. ``schema.json`` publishes the format for editors.

Nothing is imported here, so importing a submodule never pulls in PyYAML or the Worker's ``js``.
"""
