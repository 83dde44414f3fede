"""connectors/simulators."""
