"""pytest plugin of the Checkstack test kit (fixtures are added below)."""
