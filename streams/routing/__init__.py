"""The routing process: the batch engine, the routing-state reader it routes against, the
process entry point, and the Faust service that starts and supervises it."""
