"""Templates: the project scaffold of ``flareflow new`` and the files ``flareflow build`` / ``eject``
write (wrangler.toml, the Worker entry, package.json, DEPLOY.md, sync-workflows.mjs, .dev.vars.example)."""
