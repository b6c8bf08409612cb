"""The browser live stream (server-sent events), fed by domain events."""
