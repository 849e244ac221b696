"""Putting a kernel into memory: image formats, the bzImage loader, memory, segments."""
