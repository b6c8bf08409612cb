"""Transports that bring raw bytes in; nothing here decodes."""
