"""Pure ASGI middleware, one concern per module; `stack.py` decides the order."""
