"""Operations: health and readiness, metrics, backups, the systemd watchdog, `coso doctor`.

The app wires these in; each check asks the part it checks (the database, a channel, a
sender) through a small method of that part, rather than reaching into its insides.
"""
