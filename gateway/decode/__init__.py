"""Raw message + device profile -> readings, events or rejections; no I/O."""
