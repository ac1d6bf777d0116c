"""The test kit plugin authors use: fixtures and helpers to run a Checkstack host in tests."""
